package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"fabu.dev/libs/testenv"
)

// TestBrowserDeploy drives the SPA in Debian's Chromium against a real `fabu up` with a real
// git repository and sshd target: log in, open the project, deploy, and watch the live log
// until the run succeeds (e2e/browser/deploy.test.js); then the language switch, login
// errors, the servers page and deploy key, deploying from the project page, the live log
// against the stored one, a reload starting no second run, and a bad token sending the
// browser back to login (e2e/browser/spa.test.js); a bookmarkable deploy link that starts
// nothing until Confirm is pressed, or with link_confirm off starts one run once the page is
// shown and none when a ticket is needed (e2e/browser/deploylink.test.js); a platform connection to a fake
// GitLab, its synced repositories, a project created from one with its refs in the deploy picker and
// fabu's hook installed on it (e2e/browser/connections.test.js); the audit log page with its action
// filter and CSV export (e2e/browser/audit.test.js); the account page's API tokens, a silent
// refresh of an expired access token, a password change and back, and the lockout message
// (e2e/browser/account.test.js; it restores the password it changes and locks only a made-up
// user name); the build settings' stage editor and the stages, durations, progress and time
// left on run pages (e2e/browser/build.test.js); the refresh token kept in an HttpOnly cookie,
// and every page, the live log and the terminal under the CSP without a violation
// (e2e/browser/session.test.js). The files run one after the other so
// their deploys of the same project do not overlap.
func TestBrowserDeploy(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("browser test packages missing (run `make test-deps` or `cd e2e/browser && npm ci`): %v", err)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("Chromium missing (apt-get install -y chromium): %v", err)
	}
	p, a := up(t)
	r := newRepo(t)
	r.commit(site("browser", 8<<10))
	tg := newTarget(t)
	configure(t, a, tg, r, "browser-site")

	gl := newFakeGitLab(t)

	files := []string{"deploy.test.js", "spa.test.js", "deploylink.test.js", "triggers.test.js", "connections.test.js", "audit.test.js", "account.test.js", "tickets.test.js", "build.test.js"}
	files = append(files, "gitactions.test.js")
	files = append(files, "docker.test.js")                 // a docker project's container settings
	files = append(files, "secrets.test.js")                // build secrets and the artifact manifest
	files = append(files, "terminal.test.js")               // the web terminal on the sshd target
	files = append(files, "giteemode.test.js")              // the Gitee hook mode, through to the webhook service
	files = append(files, "rollback.test.js")               // one-click rollback from a run page
	files = append(files, "session.test.js")                // the refresh cookie, and every page under the CSP
	if only := os.Getenv("FABU_BROWSER_ONLY"); only != "" { // e.g. build.test.js while working on it
		files = strings.Split(only, ",")
	}
	cmd := exec.Command("node", append([]string{"--test", "--test-concurrency=1"}, files...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FABU_URL="+p.url, "FABU_USER=admin", "FABU_PASSWORD="+adminPassword,
		"FABU_PROJECT=browser-site", "FABU_WEBHOOK_SECRET="+webhookSecret, "FABU_FAKE_GITLAB="+gl.srv.URL, "FABU_FAKE_GITLAB_TOKEN="+fakeGitLabToken)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", strings.Join(files, " "), out)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}
	if html := tg.current(t, "index.html"); html != "<h1>release browser</h1>\n" {
		t.Errorf("after the browser deploy current/index.html = %q", html)
	}
}

// fakeGitLabToken is the access token the fake GitLab accepts (in PRIVATE-TOKEN).
const fakeGitLabToken = "glpat-browser-0123456789abcdef"

// fakeGitLab is a test double of GitLab's REST API v4 on 127.0.0.1, answering from the shared
// fixtures (gitlab-api/*): the fixture's repository plus two made from it, its branches, tags
// and commits, and hooks it records. Two control endpoints outside /api/v4 let the browser test
// see what fabu did: GET /fake/hooks (the hooks created, with the URL fabu asked for) and POST
// /fake/drop?path= (the repository is no longer listed, so the next sync marks it gone).
type fakeGitLab struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	repos   []map[string]any
	hooks   []map[string]any // created hooks, in GitLab's shape
	created []map[string]any // what each create asked for: repository, url, whether a token came
	nextID  int
}

func newFakeGitLab(t *testing.T) *fakeGitLab {
	f := &fakeGitLab{t: t, nextID: 1}
	var list []map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, "gitlab-api/projects_list.go-scm.json"), &list); err != nil || len(list) == 0 {
		t.Fatalf("fixture gitlab-api/projects_list.go-scm.json: %v", err)
	}
	f.repos = append(f.repos, list[0])
	for i, name := range []string{"site", "old-api"} {
		r := map[string]any{}
		for k, v := range list[0] {
			r[k] = v
		}
		full := "team/" + name
		r["id"], r["name"], r["path"], r["path_with_namespace"] = 2001+i, name, name, full
		r["name_with_namespace"] = "team / " + name
		r["http_url_to_repo"] = "https://gitlab.example.com/" + full + ".git"
		r["ssh_url_to_repo"] = "git@gitlab.example.com:" + full + ".git"
		r["web_url"] = "https://gitlab.example.com/" + full
		r["default_branch"] = "main"
		f.repos = append(f.repos, r)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitLab) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.t.Logf("fake GitLab: write answer: %v", err)
	}
}

// fixture answers one fixture as a single page.
func (f *fakeGitLab) fixture(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Page", "1")
	w.Header().Set("X-Total-Pages", "1")
	if _, err := w.Write(testenv.Fixture(f.t, name)); err != nil {
		f.t.Logf("fake GitLab: write %s: %v", name, err)
	}
}

func (f *fakeGitLab) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/fake/hooks" && r.Method == http.MethodGet:
		f.json(w, http.StatusOK, f.created)
		return
	case r.URL.Path == "/fake/drop" && r.Method == http.MethodPost:
		path := r.URL.Query().Get("path")
		for i, repo := range f.repos {
			if repo["path_with_namespace"] == path {
				f.repos = append(f.repos[:i], f.repos[i+1:]...)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		f.json(w, http.StatusNotFound, map[string]string{"message": "no repository " + path})
		return
	}
	if r.Header.Get("PRIVATE-TOKEN") != fakeGitLabToken {
		f.json(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/api/v4")
	if !ok {
		f.json(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
		return
	}
	switch {
	case p == "/projects" && r.Method == http.MethodGet:
		w.Header().Set("X-Page", "1")
		w.Header().Set("X-Total-Pages", "1")
		w.Header().Set("X-Total", fmt.Sprint(len(f.repos)))
		w.Header().Set("X-Next-Page", "")
		f.json(w, http.StatusOK, f.repos)
	case strings.HasSuffix(p, "/repository/branches"):
		f.fixture(w, "gitlab-api/branches_list.go-gitlab.json")
	case strings.HasSuffix(p, "/repository/tags"):
		f.fixture(w, "gitlab-api/tags_list.go-scm.json")
	case strings.HasSuffix(p, "/repository/commits"):
		f.fixture(w, "gitlab-api/commits_list.go-scm.json")
	case strings.HasSuffix(p, "/hooks") && r.Method == http.MethodGet:
		f.json(w, http.StatusOK, f.hooks)
	case strings.HasSuffix(p, "/hooks") && r.Method == http.MethodPost:
		var body struct {
			URL   string `json:"url"`
			Token string `json:"token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.json(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		var h map[string]any
		if err := json.Unmarshal(testenv.Fixture(f.t, "gitlab-api/hook_create_response.go-scm.json"), &h); err != nil {
			f.t.Errorf("fixture gitlab-api/hook_create_response.go-scm.json: %v", err)
		}
		h["id"], h["url"] = f.nextID, body.URL
		f.nextID++
		f.hooks = append(f.hooks, h)
		repo := strings.TrimSuffix(strings.TrimPrefix(p, "/projects/"), "/hooks")
		f.created = append(f.created, map[string]any{"id": h["id"], "repo": repo, "url": body.URL, "has_token": body.Token != ""})
		f.json(w, http.StatusCreated, h)
	case strings.Contains(p, "/hooks/") && r.Method == http.MethodDelete:
		id := p[strings.LastIndex(p, "/")+1:]
		for i, h := range f.hooks {
			if fmt.Sprint(h["id"]) == id {
				f.hooks = append(f.hooks[:i], f.hooks[i+1:]...)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		f.json(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	default:
		f.json(w, http.StatusNotFound, map[string]string{"message": "404 Not Found"})
	}
}
