package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/clients"
	"fabu.dev/libs/forge/gitlab"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/libs/testenv"
)

// forgeToken is the access token of every test connection; no API body may contain it.
const forgeToken = "tok-S3CRET-forge-0123456789abcdef"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return testenv.Fixture(t, name)
}

// forgeEnv is the gateway's test harness with the keyring kept, and every response body
// recorded so a test can check that no token leaked into one.
type forgeEnv struct {
	*env
	keys   *secret.Keyring
	logs   lockedBuffer
	mu     sync.Mutex
	bodies [][]byte
}

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newForgeEnv(t *testing.T, driver string, fc ForgeConfig) *forgeEnv {
	t.Helper()
	db := storetest.Open(t, driver)
	now := time.Now().UTC()
	sum := sha256.Sum256([]byte(token))
	if err := db.Exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u1', 'alice', 'x', 'admin', ?)`, now).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at) VALUES ('t1', 'u1', ?, ?, ?)`,
		hex.EncodeToString(sum[:]), now.Add(time.Hour), now).Error; err != nil {
		t.Fatal(err)
	}
	if fc.NewForgeClient == nil {
		fc.NewForgeClient = testForgeClient
	}
	fe := &forgeEnv{env: &env{t: t, db: db}, keys: testKeyring(t)}
	log := slog.New(slog.NewTextHandler(&fe.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Secrets: fe.keys, LogPoll: 20 * time.Millisecond, ForgeConfig: fc}, db, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(log)
	s.Routes(engine)
	fe.srv = httptest.NewServer(engine)
	t.Cleanup(fe.srv.Close)
	t.Cleanup(func() {
		fe.mu.Lock()
		defer fe.mu.Unlock()
		for _, b := range fe.bodies {
			if bytes.Contains(b, []byte(forgeToken)) {
				t.Errorf("a response body contains the connection's token: %s", b)
			}
		}
		if logs := fe.logs.String(); strings.Contains(logs, forgeToken) {
			t.Errorf("the gateway logged the connection's token: %s", logs)
		}
	})
	return fe
}

// testForgeClient is clients.New, except that GitLab does not retry a 500: the failed-sync
// test wants the failure, not three back-offs before it.
func testForgeClient(c forge.Connection) (forge.Client, error) {
	if c.Platform == forge.GitLab {
		return gitlab.New(c, gitlab.WithRetry(0, 0))
	}
	return clients.New(c)
}

// do sends a request, records the answer's body and decodes it into out (when not nil).
func (e *forgeEnv) do(method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e.mu.Lock()
	e.bodies = append(e.bodies, b)
	e.mu.Unlock()
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// must is do, failing the test unless the status is want.
func (e *forgeEnv) must(want int, method, path string, body any, out any) {
	e.t.Helper()
	var raw json.RawMessage
	if got := e.do(method, path, body, &raw); got != want {
		e.t.Fatalf("%s %s: status %d %s, want %d", method, path, got, raw, want)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// fakeForge plays one platform's REST API from the shared fixtures: repositories in pages
// with the platform's own pagination headers, refs, and hooks it records.
type fakeForge struct {
	t        *testing.T
	platform forge.Platform
	srv      *httptest.Server
	pageSize int

	mu       sync.Mutex
	repos    []map[string]any
	failPage int              // a page that answers 500; 0: none
	pages    []int            // pages of repositories asked for
	hooks    []map[string]any // installed hooks, in the platform's shape
	created  []forge.HookSpec // what each create asked for
	deleted  []string
	hookRepo []string // the repository path of each hook call
	nextHook int
	// branches, when set, replaces the branch fixture: served in pages of per_page with the
	// platform's pagination headers (GitLab filtering by ?search= as it does), and
	// branchPages records the pages asked for.
	branches    []string
	branchPages []int
}

var platformAPI = map[forge.Platform]struct{ prefix, list, ns string }{
	forge.GitLab: {"/api/v4", "/projects", "team"},
	forge.GitHub: {"/api/v3", "/user/repos", "octocat"},
	forge.Gitee:  {"/api/v5", "/user/repos", "kit101"},
}

func newFakeForge(t *testing.T, p forge.Platform, repos int) *fakeForge {
	f := &fakeForge{t: t, platform: p, pageSize: 2, nextHook: 500}
	for i := 1; i <= repos; i++ {
		f.repos = append(f.repos, f.repo(i, fmt.Sprintf("repo-%02d", i)))
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// repo makes repository i named name from the platform's list fixture.
func (f *fakeForge) repo(i int, name string) map[string]any {
	file := map[forge.Platform]string{forge.GitLab: "gitlab-api/projects_list.go-scm.json",
		forge.GitHub: "github-api/repos_list.go-scm.json", forge.Gitee: "gitee-api/repos_list.go-scm.json"}[f.platform]
	var list []map[string]any
	if err := json.Unmarshal(fixture(f.t, file), &list); err != nil || len(list) == 0 {
		f.t.Fatalf("fixture %s: %v", file, err)
	}
	r := list[0]
	full := platformAPI[f.platform].ns + "/" + name
	r["id"] = 1000 + i
	r["name"], r["path"] = name, name
	for _, k := range []string{"path_with_namespace", "full_name"} {
		if _, ok := r[k]; ok {
			r[k] = full
		}
	}
	if f.platform == forge.Gitee {
		r["html_url"] = "https://gitee.com/" + full + ".git"
	}
	return r
}

func (f *fakeForge) setRepoName(i int, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.repos {
		if int(r["id"].(int)) == 1000+i {
			f.repos[k] = f.repo(i, name)
		}
	}
}

func (f *fakeForge) dropRepo(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.repos {
		if r["id"].(int) == 1000+i {
			f.repos = append(f.repos[:k], f.repos[k+1:]...)
			return
		}
	}
	f.t.Fatalf("no repo %d", i)
}

func (f *fakeForge) addRepo(i int, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.repos = append(f.repos, f.repo(i, name))
}

func (f *fakeForge) authorized(r *http.Request) bool {
	switch f.platform {
	case forge.GitLab:
		return r.Header.Get("PRIVATE-TOKEN") == forgeToken
	case forge.GitHub:
		return r.Header.Get("Authorization") == "Bearer "+forgeToken
	default:
		return r.URL.Query().Get("access_token") == forgeToken
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeForge) serve(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	api := platformAPI[f.platform]
	p, ok := strings.CutPrefix(r.URL.Path, api.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case p == api.list && r.Method == http.MethodGet:
		f.listRepos(w, r)
	case strings.HasSuffix(p, "/branches") && f.branches != nil:
		f.listBranches(w, r, p)
	case strings.HasSuffix(p, "/branches"):
		f.serveFixture(w, map[forge.Platform]string{forge.GitLab: "gitlab-api/branches_list.go-gitlab.json",
			forge.GitHub: "github-api/branches_list.go-scm.json", forge.Gitee: "gitee-api/branches_list.go-scm.json"})
	case strings.HasSuffix(p, "/tags"):
		f.serveFixture(w, map[forge.Platform]string{forge.GitLab: "gitlab-api/tags_list.go-scm.json",
			forge.GitHub: "github-api/tags_list.docs.json", forge.Gitee: "gitee-api/tags_list.go-scm.json"})
	case strings.HasSuffix(p, "/commits"):
		f.serveFixture(w, map[forge.Platform]string{forge.GitLab: "gitlab-api/commits_list.go-scm.json",
			forge.GitHub: "github-api/commits_list.go-scm.json", forge.Gitee: "gitee-api/commits_list.go-scm.json"})
	case strings.HasSuffix(p, "/hooks"):
		f.hookRepo = append(f.hookRepo, repoOf(p))
		if r.Method == http.MethodPost {
			f.createHook(w, r)
		} else {
			writeJSON(w, http.StatusOK, f.hooks)
		}
	case strings.Contains(p, "/hooks/") && r.Method == http.MethodDelete:
		f.hookRepo = append(f.hookRepo, repoOf(p))
		id := p[strings.LastIndex(p, "/")+1:]
		for k, h := range f.hooks {
			if fmt.Sprint(h["id"]) == id {
				f.hooks = append(f.hooks[:k], f.hooks[k+1:]...)
				f.deleted = append(f.deleted, id)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	}
}

// repoOf finds the repository path in an API path: /projects/<path>/… or /repos/<o>/<r>/….
func repoOf(p string) string {
	if rest, ok := strings.CutPrefix(p, "/projects/"); ok {
		for _, sep := range []string{"/hooks", "/repository"} {
			if i := strings.Index(rest, sep); i >= 0 {
				return rest[:i]
			}
		}
	}
	parts := strings.Split(strings.TrimPrefix(p, "/repos/"), "/")
	if len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return p
}

// listRepos answers one page of repositories with the platform's pagination headers.
func (f *fakeForge) listRepos(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	f.pages = append(f.pages, page)
	if page == f.failPage {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "500 Internal Server Error"})
		return
	}
	lo, hi := f.pageHeaders(w, platformAPI[f.platform].list, page, f.pageSize, len(f.repos))
	writeJSON(w, http.StatusOK, f.repos[lo:hi])
}

// listBranches answers one page of f.branches at path.
func (f *fakeForge) listBranches(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per < 1 {
		per = 20
	}
	f.branchPages = append(f.branchPages, page)
	names := f.branches
	if search := q.Get("search"); f.platform == forge.GitLab && search != "" {
		names = nil
		for _, n := range f.branches {
			if strings.Contains(n, search) {
				names = append(names, n)
			}
		}
	}
	lo, hi := f.pageHeaders(w, path, page, per, len(names))
	list := []map[string]any{}
	for i, n := range names[lo:hi] {
		sha := fmt.Sprintf("%040x", lo+i+1)
		commit := map[string]any{"sha": sha}
		if f.platform == forge.GitLab {
			commit = map[string]any{"id": sha}
		}
		list = append(list, map[string]any{"name": n, "commit": commit, "protected": false})
	}
	writeJSON(w, http.StatusOK, list)
}

// pageHeaders sets the platform's pagination headers for page of n items, per to a page,
// at API path, and returns the page's bounds.
func (f *fakeForge) pageHeaders(w http.ResponseWriter, path string, page, per, n int) (lo, hi int) {
	total := max(1, (n+per-1)/per)
	lo, hi = min((page-1)*per, n), min(page*per, n)
	next := 0
	if page < total {
		next = page + 1
	}
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s%s%s?page=%d&per_page=%d>; rel="%s"`, f.srv.URL, platformAPI[f.platform].prefix, path, p, per, rel)
	}
	h := w.Header()
	switch f.platform {
	case forge.GitLab:
		h.Set("X-Page", strconv.Itoa(page))
		h.Set("X-Per-Page", strconv.Itoa(per))
		h.Set("X-Total-Pages", strconv.Itoa(total))
		h.Set("X-Total", strconv.Itoa(n))
		links := []string{link(1, "first"), link(total, "last")}
		if next > 0 {
			h.Set("X-Next-Page", strconv.Itoa(next))
			links = append([]string{link(next, "next")}, links...)
		} else {
			h.Set("X-Next-Page", "")
		}
		h.Set("Link", strings.Join(links, ", "))
	case forge.GitHub:
		links := []string{link(1, "first"), link(total, "last")}
		if next > 0 {
			links = append([]string{link(next, "next")}, links...)
		}
		h.Set("Link", strings.Join(links, ", "))
	case forge.Gitee:
		h.Set("total_page", strconv.Itoa(total))
		h.Set("total_count", strconv.Itoa(n))
	}
	return lo, hi
}

func (f *fakeForge) serveFixture(w http.ResponseWriter, files map[forge.Platform]string) {
	w.Header().Set("Content-Type", "application/json")
	if f.platform == forge.Gitee {
		w.Header().Set("total_page", "1")
	}
	_, _ = w.Write(fixture(f.t, files[f.platform]))
}

// createHook records what fabu asked for and answers with the platform's hook fixture.
func (f *fakeForge) createHook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL      string `json:"url"`
		Token    string `json:"token"`    // GitLab
		Password string `json:"password"` // Gitee
		Config   struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		} `json:"config"` // GitHub
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return
	}
	spec := forge.HookSpec{URL: body.URL, Secret: body.Token + body.Password}
	if f.platform == forge.GitHub {
		spec = forge.HookSpec{URL: body.Config.URL, Secret: body.Config.Secret}
	}
	f.created = append(f.created, spec)
	writeJSON(w, http.StatusCreated, f.newHook(spec.URL))
}

// newHook adds a hook to the repository; the caller holds mu or owns f alone.
func (f *fakeForge) newHook(url string) map[string]any {
	file := map[forge.Platform]string{forge.GitLab: "gitlab-api/hook_create_response.go-scm.json",
		forge.GitHub: "github-api/hook_get.go-scm.json", forge.Gitee: "gitee-api/hook_get.go-scm.json"}[f.platform]
	var h map[string]any
	if err := json.Unmarshal(fixture(f.t, file), &h); err != nil {
		f.t.Fatalf("fixture %s: %v", file, err)
	}
	f.nextHook++
	h["id"] = f.nextHook
	if cfg, ok := h["config"].(map[string]any); ok {
		cfg["url"] = url
	} else {
		h["url"] = url
	}
	f.hooks = append(f.hooks, h)
	return h
}

func (f *fakeForge) hookIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, h := range f.hooks {
		out = append(out, fmt.Sprint(h["id"]))
	}
	return out
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
