package gitee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

const token = "tok-5ecret-0123456789"

// fakeGitee plays Gitee API v5 from the gitee-api fixtures.
type fakeGitee struct {
	t     *testing.T
	srv   *httptest.Server
	repos []map[string]any // served in pages by /user/repos

	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	// override, when set, answers a request before the routes do.
	override func(w http.ResponseWriter, r *http.Request) bool
}

func newFake(t *testing.T) *fakeGitee {
	f := &fakeGitee{t: t}
	// Five repositories from the one in repos_list: enough for three pages of two.
	var base []map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, "gitee-api/repos_list.go-scm.json"), &base); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		var r map[string]any
		b, _ := json.Marshal(base[0])
		_ = json.Unmarshal(b, &r)
		name := fmt.Sprintf("repo-%d", i)
		if i == 0 {
			name = "drone-yml-test"
		}
		r["id"], r["path"], r["name"], r["full_name"] = 14836026+i, name, name, "kit101/"+name
		f.repos = append(f.repos, r)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitee) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(forge.Connection{Platform: forge.Gitee, BaseURL: f.srv.URL, Token: token}, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.wait = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return c
}

func (f *fakeGitee) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeGitee) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeGitee) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (f *fakeGitee) send(w http.ResponseWriter, status int, fixtureName string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(testenv.Fixture(f.t, "gitee-api/"+fixtureName))
}

func (f *fakeGitee) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, string(body))
	override := f.override
	f.mu.Unlock()
	if override != nil && override(w, r) {
		return
	}
	if r.URL.Query().Get("access_token") != token {
		f.fail(w, http.StatusUnauthorized, "401 Unauthorized: Access token does not exist")
		return
	}
	const repo = "/api/v5/repos/kit101/drone-yml-test"
	switch p := r.URL.EscapedPath(); {
	case r.Method == http.MethodGet && p == "/api/v5/user/repos":
		f.serveRepos(w, r)
	case r.Method == http.MethodGet && p == repo:
		f.send(w, http.StatusOK, "repo_get.go-scm.json")
	case r.Method == http.MethodGet && p == repo+"/branches":
		f.send(w, http.StatusOK, "branches_list.go-scm.json")
	case r.Method == http.MethodGet && p == repo+"/tags":
		// The real pagination headers, as captured, names in lower case.
		for k, vs := range testenv.FixtureHeaders(f.t, "gitee-api/pagination.go-scm.headers.txt") {
			w.Header()[k] = vs
		}
		f.send(w, http.StatusOK, "tags_list.go-scm.json")
	case r.Method == http.MethodGet && p == repo+"/commits":
		f.send(w, http.StatusOK, "commits_list.go-scm.json")
	case r.Method == http.MethodGet && p == repo+"/hooks":
		f.send(w, http.StatusOK, "hooks_list.go-scm.json")
	case r.Method == http.MethodPost && p == repo+"/hooks":
		f.send(w, http.StatusCreated, "hook_get.go-scm.json")
	case r.Method == http.MethodDelete && p == repo+"/hooks/787341":
		w.WriteHeader(http.StatusNoContent)
	default:
		f.send(w, http.StatusNotFound, "error.go-scm.json")
	}
}

func (f *fakeGitee) serveRepos(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	var list []map[string]any
	for _, rp := range f.repos {
		if q := r.URL.Query().Get("q"); q == "" || strings.Contains(rp["full_name"].(string), q) {
			list = append(list, rp)
		}
	}
	total := (len(list) + per - 1) / per
	w.Header()["total_count"] = []string{strconv.Itoa(len(list))}
	w.Header()["total_page"] = []string{strconv.Itoa(total)}
	from, to := min((page-1)*per, len(list)), min(page*per, len(list))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list[from:to])
}

func TestProjectsPages(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	var got []string
	wantNext := []int{2, 3, 0}
	for page, i := 1, 0; page != 0; i++ {
		ps, info, err := c.Projects(context.Background(), forge.ListOptions{Page: page, PerPage: 2})
		if err != nil {
			t.Fatal(err)
		}
		q := f.last().URL.Query()
		if q.Get("access_token") != token || q.Get("page") != strconv.Itoa(page) || q.Get("per_page") != "2" || q.Has("q") {
			t.Errorf("page %d: query = %v", page, q)
		}
		if info.NextPage != wantNext[i] {
			t.Errorf("page %d: NextPage = %d, want %d", page, info.NextPage, wantNext[i])
		}
		for _, p := range ps {
			got = append(got, p.Path)
		}
		page = info.NextPage
	}
	want := "kit101/drone-yml-test kit101/repo-1 kit101/repo-2 kit101/repo-3 kit101/repo-4"
	if strings.Join(got, " ") != want {
		t.Errorf("paths = %v, want %s", got, want)
	}
}

func TestProjectsSearchAndPerPage(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ps, info, err := c.Projects(context.Background(), forge.ListOptions{PerPage: 500, Search: "repo-3"})
	if err != nil {
		t.Fatal(err)
	}
	q := f.last().URL.Query()
	if q.Get("q") != "repo-3" || q.Get("per_page") != "100" || q.Get("page") != "1" {
		t.Errorf("query = %v, want q=repo-3 per_page=100 page=1", q)
	}
	if len(ps) != 1 || ps[0].Path != "kit101/repo-3" || info.NextPage != 0 {
		t.Errorf("got %+v %+v", ps, info)
	}
	// A server that ignores q is filtered here.
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, "q=", "ignored=")
		f.serveRepos(w, r)
		return true
	}
	ps, _, err = c.Projects(context.Background(), forge.ListOptions{PerPage: 100, Search: "REPO-4"})
	if err != nil || len(ps) != 1 || ps[0].Path != "kit101/repo-4" {
		t.Errorf("client-side filter: got %+v, %v", ps, err)
	}
}

func TestProject(t *testing.T) {
	f := newFake(t)
	p, err := f.client(t).Project(context.Background(), "kit101/drone-yml-test")
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Project{
		ID: "14836026", Path: "kit101/drone-yml-test", Name: "drone-yml-test", Namespace: "kit101",
		DefaultBranch: "master", HTTPURL: "https://gitee.com/kit101/drone-yml-test.git",
		SSHURL: "git@gitee.com:kit101/drone-yml-test.git", WebURL: "https://gitee.com/kit101/drone-yml-test",
		UpdatedAt: time.Date(2021, 9, 30, 10, 10, 27, 0, time.UTC),
	}
	if !p.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want %v", p.UpdatedAt, want.UpdatedAt)
	}
	p.UpdatedAt = want.UpdatedAt
	if p != want {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
}

func TestRefsAndCommits(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()

	bs, info, err := c.Branches(ctx, "kit101/drone-yml-test", forge.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (forge.Ref{Kind: forge.Branch, Name: "master", Commit: "e3c0ff4d5cef439ea11b30866fb1ed79b420801d"}); len(bs) != 1 || bs[0] != want || info.NextPage != 0 {
		t.Errorf("Branches = %+v %+v, want [%+v]", bs, info, want)
	}
	if p := f.last().URL; p.Path != "/api/v5/repos/kit101/drone-yml-test/branches" || p.Query().Get("per_page") != "20" {
		t.Errorf("request = %s", p.Path)
	}
	if bs, _, _ = c.Branches(ctx, "kit101/drone-yml-test", forge.ListOptions{Search: "feat"}); len(bs) != 0 {
		t.Errorf("Branches search feat = %+v, want none", bs)
	}

	tags, info, err := c.Tags(ctx, "kit101/drone-yml-test", forge.ListOptions{Page: 1, PerPage: 4, Search: "1."})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range tags {
		if r.Kind != forge.Tag || r.Commit == "" {
			t.Errorf("tag %+v", r)
		}
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "1.1,1.0,1.2" || info.NextPage != 2 {
		t.Errorf("Tags = %v next %d, want 1.1,1.0,1.2 next 2 (total_page: 3)", names, info.NextPage)
	}
	if _, info, _ = c.Tags(ctx, "kit101/drone-yml-test", forge.ListOptions{Page: 3}); info.NextPage != 0 {
		t.Errorf("last page NextPage = %d, want 0", info.NextPage)
	}

	cs, _, err := c.Commits(ctx, "kit101/drone-yml-test", forge.ListOptions{Ref: "feat/登录", PerPage: 3})
	if err != nil {
		t.Fatal(err)
	}
	if q := f.last().URL.Query(); q.Get("sha") != "feat/登录" || q.Get("per_page") != "3" {
		t.Errorf("commits query = %v", q)
	}
	if len(cs) != 3 {
		t.Fatalf("%d commits, want 3", len(cs))
	}
	want := forge.Commit{SHA: "e3c0ff4d5cef439ea11b30866fb1ed79b420801d", Message: "add/update/delete/rename\n", Author: "kit101",
		URL: "https://gitee.com/kit101/drone-yml-test/commit/e3c0ff4d5cef439ea11b30866fb1ed79b420801d"}
	if got := cs[0]; got.SHA != want.SHA || got.Message != want.Message || got.Author != want.Author || got.URL != want.URL ||
		got.Time.Unix() != time.Date(2021, 8, 23, 15, 45, 53, 0, time.UTC).Unix() {
		t.Errorf("commit = %+v, want %+v at 2021-08-23T23:45:53+08:00", got, want)
	}
}

func TestHooks(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	hs, err := c.Hooks(ctx, "kit101/drone-yml-test")
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Hook{ID: "787341", URL: "http://test.kit101.com/webhook", Active: true,
		Events:     []string{"push", "tag_push", "issues", "note", "merge_requests"},
		LastStatus: 403, LastResult: "<html> <head><title>403 Forbidden</title></head> <body> <center><h1>403 Forbidden</h1></center> </body> </html>"}
	if len(hs) != 1 || fmt.Sprint(hs[0]) != fmt.Sprint(want) {
		t.Errorf("Hooks = %+v, want [%+v]", hs, want)
	}
	if s := fmt.Sprintf("%#v", hs); strings.Contains(s, "123asdas123") {
		t.Errorf("hook holds the echoed password: %s", s)
	}

	h, err := c.CreateHook(ctx, "kit101/drone-yml-test", forge.HookSpec{URL: "https://fabu.example.com/hooks/gitee/1", Secret: "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != "787341" || strings.Contains(fmt.Sprintf("%#v", h), "123asdas123") {
		t.Errorf("CreateHook = %#v", h)
	}
	r := f.last()
	var body map[string]any
	f.mu.Lock()
	err = json.Unmarshal([]byte(f.bodies[len(f.bodies)-1]), &body)
	f.mu.Unlock()
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/api/v5/repos/kit101/drone-yml-test/hooks" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("request %s %s %v: %v", r.Method, r.URL.Path, r.Header, err)
	}
	wantBody := map[string]any{"url": "https://fabu.example.com/hooks/gitee/1", "encryption_type": 1.0, "password": "s3cr3t",
		"push_events": true, "tag_push_events": true, "issues_events": false, "note_events": false, "merge_requests_events": false}
	if fmt.Sprint(body) != fmt.Sprint(wantBody) {
		t.Errorf("body = %v, want %v", body, wantBody)
	}
	if r.URL.Query().Get("access_token") != token {
		t.Errorf("access_token not sent on POST")
	}

	if err := c.DeleteHook(ctx, "kit101/drone-yml-test", "787341"); err != nil {
		t.Errorf("DeleteHook: %v", err)
	}
	if r := f.last(); r.Method != http.MethodDelete || r.URL.Path != "/api/v5/repos/kit101/drone-yml-test/hooks/787341" {
		t.Errorf("DeleteHook request %s %s", r.Method, r.URL.Path)
	}
	if err := c.DeleteHook(ctx, "kit101/drone-yml-test", "1"); !apperr.Is(err, apperr.CodeNotFound) {
		t.Errorf("DeleteHook of a missing hook = %v, want not_found", err)
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	ctx := context.Background()
	calls := map[string]func() error{
		"project without owner": func() error { _, err := c.Project(ctx, "repo"); return err },
		"project with three parts": func() error {
			_, _, err := c.Branches(ctx, "a/b/c", forge.ListOptions{})
			return err
		},
		"dot-dot owner":        func() error { _, _, err := c.Tags(ctx, "../x", forge.ListOptions{}); return err },
		"encoded slash":        func() error { _, err := c.Hooks(ctx, "a/b%2fc"); return err },
		"hook id not a number": func() error { return c.DeleteHook(ctx, "kit101/drone-yml-test", "1/../../x") },
		"hook without secret":  func() error { _, err := c.CreateHook(ctx, "a/b", forge.HookSpec{URL: "https://x.example"}); return err },
		"hook with relative URL": func() error {
			_, err := c.CreateHook(ctx, "a/b", forge.HookSpec{URL: "/hooks", Secret: "s"})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		status int
		want   apperr.Code
	}{
		{http.StatusBadRequest, apperr.CodeInvalid},
		{http.StatusUnauthorized, apperr.CodeUnauthorized},
		{http.StatusForbidden, apperr.CodeForbidden},
		{http.StatusNotFound, apperr.CodeNotFound},
		{http.StatusConflict, apperr.CodeConflict},
		{http.StatusUnprocessableEntity, apperr.CodeInvalid},
		{http.StatusInternalServerError, apperr.CodeUnavailable},
		{http.StatusBadGateway, apperr.CodeUnavailable},
		{http.StatusServiceUnavailable, apperr.CodeUnavailable},
		{http.StatusTeapot, apperr.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			f := newFake(t)
			f.override = func(w http.ResponseWriter, r *http.Request) bool {
				f.fail(w, tt.status, "gitee says no")
				return true
			}
			_, err := f.client(t).Project(context.Background(), "kit101/drone-yml-test")
			if apperr.CodeOf(err) != tt.want {
				t.Fatalf("err = %v (code %s), want %s", err, apperr.CodeOf(err), tt.want)
			}
			if !strings.Contains(err.Error(), "gitee says no") || strings.Contains(err.Error(), token) {
				t.Errorf("err %q should carry Gitee's message and never the token", err)
			}
		})
	}
}

func TestErrorFixtures(t *testing.T) {
	f := newFake(t)
	_, err := f.client(t).Project(context.Background(), "kit101/missing")
	if !apperr.Is(err, apperr.CodeNotFound) || !strings.Contains(err.Error(), "404 Project Not Found") {
		t.Errorf("missing project: err = %v, want not_found with Gitee's message", err)
	}
	c, err := New(forge.Connection{BaseURL: f.srv.URL, Token: "wrong"}, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Projects(context.Background(), forge.ListOptions{}); !apperr.Is(err, apperr.CodeUnauthorized) {
		t.Errorf("bad token: err = %v, want unauthorized", err)
	}
	// A non-JSON success body is the platform misbehaving, not the caller.
	f.override = func(w http.ResponseWriter, r *http.Request) bool { _, _ = io.WriteString(w, "<html>"); return true }
	if _, err := f.client(t).Project(context.Background(), "kit101/drone-yml-test"); !apperr.Is(err, apperr.CodeUnavailable) {
		t.Errorf("HTML body: err = %v, want unavailable", err)
	}
}

func TestTransportErrorHidesToken(t *testing.T) {
	f := newFake(t)
	c := f.client(t)
	f.srv.Close()
	_, err := c.Project(context.Background(), "kit101/drone-yml-test")
	if !apperr.Is(err, apperr.CodeUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "access_token") {
		t.Errorf("error leaks the token URL: %v", err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, token) {
			t.Errorf("client prints its token: %s", s)
		}
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name       string
		limited    int    // how many 429s before success
		retryAfter string // header value
		wantErr    apperr.Code
		wantWaits  []time.Duration
		wantCalls  int
	}{
		{"two 429s then success", 2, "2", "", []time.Duration{2 * time.Second, 2 * time.Second}, 3},
		{"no Retry-After doubles", 3, "", "", []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, 4},
		{"gives up after three retries", 10, "1", apperr.CodeUnavailable, []time.Duration{time.Second, time.Second, time.Second}, 4},
		{"Retry-After beyond the bound", 1, "60", apperr.CodeUnavailable, nil, 1},
		{"waits never total more than 30s", 10, "12", apperr.CodeUnavailable, []time.Duration{12 * time.Second, 12 * time.Second}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var n atomic.Int32
			f.override = func(w http.ResponseWriter, r *http.Request) bool {
				if int(n.Add(1)) > tt.limited {
					return false
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				f.fail(w, http.StatusTooManyRequests, "429 Too Many Requests")
				return true
			}
			c := f.client(t)
			var waits []time.Duration
			c.wait = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			_, err := c.Project(context.Background(), "kit101/drone-yml-test")
			if apperr.CodeOf(err) != tt.wantErr && !(tt.wantErr == "" && err == nil) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) || f.count() != tt.wantCalls {
				t.Errorf("waits %v over %d calls, want %v over %d", waits, f.count(), tt.wantWaits, tt.wantCalls)
			}
		})
	}
}

func TestRateLimitHonoursContext(t *testing.T) {
	f := newFake(t)
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "20")
		f.fail(w, http.StatusTooManyRequests, "429 Too Many Requests")
		return true
	}
	c := f.client(t)
	c.wait = sleepCtx // the real timer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Project(ctx, "kit101/drone-yml-test")
	if !errors.Is(err, context.DeadlineExceeded) || !apperr.Is(err, apperr.CodeUnavailable) {
		t.Fatalf("err = %v, want unavailable wrapping DeadlineExceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("waited %v past the context's deadline", time.Since(start))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h       string
		attempt int
		want    time.Duration
	}{
		{"3", 0, 3 * time.Second},
		{"0", 2, 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 0, 7 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, 0},
		{"", 0, time.Second},
		{"soon", 2, 4 * time.Second},
		{"-5", 1, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, tt.attempt, now); got != tt.want {
			t.Errorf("retryAfter(%q, %d) = %v, want %v", tt.h, tt.attempt, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		conn    forge.Connection
		want    string
		wantErr bool
	}{
		{"gitee.com by default", forge.Connection{}, "https://gitee.com/api/v5", false},
		{"explicit", forge.Connection{Platform: forge.Gitee, BaseURL: "https://gitee.com/"}, "https://gitee.com/api/v5", false},
		{"self-hosted below a path", forge.Connection{BaseURL: "https://git.example.cn/gitee/"}, "https://git.example.cn/gitee/api/v5", false},
		{"wrong platform", forge.Connection{Platform: forge.GitLab}, "", true},
		{"no scheme", forge.Connection{BaseURL: "gitee.com"}, "", true},
		{"ftp", forge.Connection{BaseURL: "ftp://gitee.com"}, "", true},
		{"credentials", forge.Connection{BaseURL: "https://u:p@gitee.com"}, "", true},
		{"query", forge.Connection{BaseURL: "https://gitee.com/?access_token=x"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.conn, nil)
			if tt.wantErr {
				if !apperr.Is(err, apperr.CodeInvalid) {
					t.Fatalf("err = %v, want invalid", err)
				}
				return
			}
			if err != nil || c.base.String() != tt.want || c.Platform() != forge.Gitee {
				t.Fatalf("New = %v, %v; want base %s", c, err, tt.want)
			}
		})
	}
}

func TestSelfHostedPath(t *testing.T) {
	f := newFake(t)
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/gitee/api/v5/") {
			return false
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/gitee")
		r.URL.RawPath = ""
		return false // served by the routes at the rewritten path
	}
	c, err := New(forge.Connection{BaseURL: f.srv.URL + "/gitee", Token: token}, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Project(context.Background(), "kit101/drone-yml-test"); err != nil {
		t.Fatalf("Project via /gitee/api/v5: %v", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
