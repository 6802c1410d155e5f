package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

const testToken = "ghp_testtoken"

// fakeGitHub plays GitHub Enterprise's REST API below /api/v3 from the github-api
// fixtures, checking every request carries the headers GitHub requires.
type fakeGitHub struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	hits   []string // "METHOD path?query" of every request
	routes map[string]http.HandlerFunc
}

func newFake(t *testing.T) *fakeGitHub {
	t.Helper()
	f := &fakeGitHub{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) handle(route string, h http.HandlerFunc) { f.routes[route] = h }

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits = append(f.hits, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	for k, want := range map[string]string{
		"Authorization":        "Bearer " + testToken,
		"Accept":               "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28",
		"User-Agent":           "fabu",
	} {
		if got := r.Header.Get(k); got != want {
			f.t.Errorf("%s %s: header %s = %q, want %q", r.Method, r.URL.Path, k, got, want)
		}
	}
	h, ok := f.routes[r.Method+" "+r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(testenv.Fixture(f.t, "github-api/error.go-scm.json"))
		return
	}
	h(w, r)
}

func (f *fakeGitHub) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hits...)
}

// client returns a Client against the fake, as an Enterprise installation whose web root
// is the fake's URL, with virtual waits recorded in waits.
func (f *fakeGitHub) client(t *testing.T) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(forge.Connection{Platform: forge.GitHub, BaseURL: f.srv.URL, Token: testToken}, WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.wait = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return c, waits
}

// serveJSON answers with a fixture and the given extra headers.
func serveJSON(t *testing.T, status int, body []byte, extra http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range extra {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func TestNewBaseURLs(t *testing.T) {
	tests := []struct {
		base, api string
	}{
		{"", "https://api.github.com/"},
		{"https://github.com", "https://api.github.com/"},
		{"https://github.com/", "https://api.github.com/"},
		{"https://ghe.example.com", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/", "https://ghe.example.com/api/v3/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/"},
		{"https://api.example.com", "https://api.example.com/api/v3/"},
		{"http://10.0.0.5:8080/git", "http://10.0.0.5:8080/git/api/v3/"},
	}
	for _, tt := range tests {
		c, err := New(forge.Connection{BaseURL: tt.base, Token: "x"})
		if err != nil {
			t.Errorf("New(%q): %v", tt.base, err)
			continue
		}
		if got := c.gh.BaseURL.String(); got != tt.api {
			t.Errorf("New(%q) API = %s, want %s", tt.base, got, tt.api)
		}
		if strings.Contains(c.String()+c.GoString(), "x") && !strings.Contains(tt.api, "x") {
			t.Errorf("String %q shows the token", c.String())
		}
	}
	for _, bad := range []forge.Connection{
		{Platform: forge.GitLab},
		{BaseURL: "ftp://ghe.example.com"},
		{BaseURL: "https://user:pw@ghe.example.com"},
		{BaseURL: "https://ghe.example.com?x=1"},
		{BaseURL: "ghe.example.com"},
	} {
		if _, err := New(bad); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("New(%+v) = %v, want invalid", bad, err)
		}
	}
	c, _ := New(forge.Connection{})
	if c.Platform() != forge.GitHub {
		t.Errorf("Platform = %s", c.Platform())
	}
}

func TestProjectsPaginates(t *testing.T) {
	f := newFake(t)
	link := testenv.FixtureHeaders(t, "github-api/ratelimit_and_link.go-scm.headers.txt")
	page2 := append(append([]byte("["), testenv.Fixture(t, "github-api/repo_get.go-scm.json")...), ']')
	f.handle("GET /api/v3/user/repos", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("per_page") != "100" || q.Get("sort") != "full_name" {
			t.Errorf("query %s, want per_page=100 and sort=full_name", r.URL.RawQuery)
		}
		switch q.Get("page") {
		case "1":
			serveJSON(t, 200, testenv.Fixture(t, "github-api/repos_list.go-scm.json"), link)(w, r)
		case "2":
			serveJSON(t, 200, page2, nil)(w, r)
		default:
			t.Errorf("unexpected page %q", q.Get("page"))
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	c, _ := f.client(t)
	ctx := context.Background()

	var all []forge.Project
	opt := forge.ListOptions{Page: 1, PerPage: 500} // clamped to 100
	for pages := 0; ; pages++ {
		if pages > 2 {
			t.Fatal("pagination does not end")
		}
		ps, pi, err := c.Projects(ctx, opt)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ps...)
		if pi.NextPage == 0 {
			break
		}
		if pi.NextPage != 2 {
			t.Fatalf("NextPage = %d, want 2 from the Link header", pi.NextPage)
		}
		opt.Page = pi.NextPage
	}
	if len(all) != 2 {
		t.Fatalf("got %d projects over two pages, want 2", len(all))
	}
	want := forge.Project{
		ID: "1296269", Path: "octocat/Hello-World", Name: "Hello-World", Namespace: "octocat",
		Description: "This your first repo!", DefaultBranch: "master",
		HTTPURL: "https://github.com/octocat/Hello-World.git", SSHURL: "git@github.com:octocat/Hello-World.git",
		WebURL: "https://github.com/octocat/Hello-World", UpdatedAt: time.Date(2011, 1, 26, 19, 14, 43, 0, time.UTC),
	}
	got := all[0]
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdatedAt = %s, want %s", got.UpdatedAt, want.UpdatedAt)
	}
	got.UpdatedAt = want.UpdatedAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("project =\n%+v\nwant\n%+v", got, want)
	}
	if all[1].Path != "octocat/Hello-World" || all[1].ID == "" {
		t.Errorf("page 2 project = %+v", all[1])
	}

	// Search filters by full name, case-insensitively, without losing the next page.
	ps, pi, err := c.Projects(ctx, forge.ListOptions{Page: 1, PerPage: 100, Search: "HELLO"})
	if err != nil || len(ps) != 1 || pi.NextPage != 2 {
		t.Errorf("Search HELLO = %d projects, next %d, %v; want 1, 2", len(ps), pi.NextPage, err)
	}
	ps, pi, err = c.Projects(ctx, forge.ListOptions{Page: 1, PerPage: 100, Search: "nomatch"})
	if err != nil || len(ps) != 0 || pi.NextPage != 2 {
		t.Errorf("Search nomatch = %d projects, next %d, %v; want 0, 2", len(ps), pi.NextPage, err)
	}
}

func TestRepositoryCalls(t *testing.T) {
	f := newFake(t)
	const repo = "/api/v3/repos/octocat/Hello-World"
	f.handle("GET "+repo, serveJSON(t, 200, testenv.Fixture(t, "github-api/repo_get.go-scm.json"), nil))
	f.handle("GET "+repo+"/branches", serveJSON(t, 200, testenv.Fixture(t, "github-api/branches_list.go-scm.json"),
		testenv.FixtureHeaders(t, "github-api/pagination.docs.headers.txt")))
	f.handle("GET "+repo+"/tags", serveJSON(t, 200, testenv.Fixture(t, "github-api/tags_list.docs.json"), nil))
	f.handle("GET "+repo+"/commits", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("sha"); got != "release/1.x" {
			t.Errorf("commits sha = %q, want release/1.x", got)
		}
		serveJSON(t, 200, testenv.Fixture(t, "github-api/commits_list.go-scm.json"), nil)(w, r)
	})
	c, _ := f.client(t)
	ctx := context.Background()

	p, err := c.Project(ctx, "octocat/Hello-World")
	if err != nil || p.Path != "octocat/Hello-World" || p.DefaultBranch != "master" || p.HTTPURL == "" {
		t.Errorf("Project = %+v, %v", p, err)
	}

	bs, pi, err := c.Branches(ctx, "octocat/Hello-World", forge.ListOptions{Page: 3, PerPage: 10})
	wantB := []forge.Ref{{Kind: forge.Branch, Name: "master", Commit: "6dcb09b5b57875f334f61aebed695e2e4193db5e", Protected: true}}
	if err != nil || !reflect.DeepEqual(bs, wantB) || pi.NextPage != 4 {
		t.Errorf("Branches = %+v, next %d, %v; want %+v, next 4 (docs Link header)", bs, pi.NextPage, err, wantB)
	}
	bs, _, err = c.Branches(ctx, "octocat/Hello-World", forge.ListOptions{Search: "feature"})
	if err != nil || len(bs) != 0 {
		t.Errorf("Branches(Search feature) = %+v, %v; want none", bs, err)
	}

	ts, pi, err := c.Tags(ctx, "octocat/Hello-World", forge.ListOptions{})
	wantT := []forge.Ref{{Kind: forge.Tag, Name: "v0.1", Commit: "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc"}}
	if err != nil || !reflect.DeepEqual(ts, wantT) || pi.NextPage != 0 {
		t.Errorf("Tags = %+v, next %d, %v; want %+v, last page", ts, pi.NextPage, err, wantT)
	}

	cs, _, err := c.Commits(ctx, "octocat/Hello-World", forge.ListOptions{Ref: "release/1.x"})
	if err != nil || len(cs) != 1 {
		t.Fatalf("Commits = %+v, %v", cs, err)
	}
	wantC := forge.Commit{
		SHA:     "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
		Message: "Merge pull request #6 from Spaceghost/patch-1\n\nNew line at end of file.",
		Author:  "The Octocat",
		Time:    time.Date(2012, 3, 6, 23, 6, 50, 0, time.UTC),
		URL:     "https://github.com/octocat/Hello-World/commit/7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
	}
	if !cs[0].Time.Equal(wantC.Time) {
		t.Errorf("commit time = %s, want %s", cs[0].Time, wantC.Time)
	}
	cs[0].Time = wantC.Time
	if cs[0] != wantC {
		t.Errorf("commit =\n%+v\nwant\n%+v", cs[0], wantC)
	}

	wantHits := []string{
		"GET " + repo,
		"GET " + repo + "/branches?page=3&per_page=10",
		"GET " + repo + "/branches?page=1&per_page=30",
		"GET " + repo + "/tags?page=1&per_page=30",
		"GET " + repo + "/commits?page=1&per_page=30&sha=release%2F1.x",
	}
	if got := f.requests(); !reflect.DeepEqual(got, wantHits) {
		t.Errorf("requests =\n%q\nwant\n%q", got, wantHits)
	}
}

func TestHooks(t *testing.T) {
	f := newFake(t)
	const hooks = "/api/v3/repos/octocat/Hello-World/hooks"
	f.handle("GET "+hooks, serveJSON(t, 200, testenv.Fixture(t, "github-api/hooks_list.go-scm.json"), nil))
	f.handle("POST "+hooks, func(w http.ResponseWriter, r *http.Request) {
		var got map[string]any
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decode hook body: %v", err)
		}
		want := map[string]any{
			"name":   "web",
			"active": true,
			"events": []any{"push"},
			"config": map[string]any{
				"url": "https://fabu.example/hooks/github", "content_type": "json",
				"secret": "s3cret", "insecure_ssl": "0",
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("hook body =\n%v\nwant\n%v", got, want)
		}
		serveJSON(t, http.StatusCreated, testenv.Fixture(t, "github-api/hook_get.go-scm.json"), nil)(w, r)
	})
	f.handle("DELETE "+hooks+"/1", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	c, _ := f.client(t)
	ctx := context.Background()

	hs, err := c.Hooks(ctx, "octocat/Hello-World")
	want := []forge.Hook{{ID: "1", URL: "http://example.com/webhook", Events: []string{"push", "pull_request"}, Active: true}}
	if err != nil || !reflect.DeepEqual(hs, want) {
		t.Errorf("Hooks = %+v, %v; want %+v", hs, err, want)
	}
	h, err := c.CreateHook(ctx, "octocat/Hello-World", forge.HookSpec{URL: "https://fabu.example/hooks/github", Secret: "s3cret"})
	if err != nil || h.ID != "1" || !h.Active {
		t.Errorf("CreateHook = %+v, %v", h, err)
	}
	if err := c.DeleteHook(ctx, "octocat/Hello-World", "1"); err != nil {
		t.Errorf("DeleteHook: %v", err)
	}
	if err := c.DeleteHook(ctx, "octocat/Hello-World", "2"); !apperr.Is(err, apperr.CodeNotFound) {
		t.Errorf("DeleteHook(missing) = %v, want not_found", err)
	}
	wantHits := []string{
		"GET " + hooks + "?page=1&per_page=100",
		"POST " + hooks,
		"DELETE " + hooks + "/1",
		"DELETE " + hooks + "/2",
	}
	if got := f.requests(); !reflect.DeepEqual(got, wantHits) {
		t.Errorf("requests =\n%q\nwant\n%q", got, wantHits)
	}
}

func TestHooksFollowsPages(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/v3/repos/o/r/hooks", func(w http.ResponseWriter, r *http.Request) {
		var next http.Header
		if r.URL.Query().Get("page") == "1" {
			next = http.Header{"Link": {`<https://api.github.com/repos/o/r/hooks?page=2>; rel="next"`}}
		}
		serveJSON(t, 200, testenv.Fixture(t, "github-api/hooks_list.go-scm.json"), next)(w, r)
	})
	c, _ := f.client(t)
	hs, err := c.Hooks(context.Background(), "o/r")
	if err != nil || len(hs) != 2 {
		t.Errorf("Hooks = %+v, %v; want one hook from each of two pages", hs, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	f := newFake(t)
	c, _ := f.client(t)
	ctx := context.Background()
	for _, p := range []string{"", "octocat", "a/b/c", "../x", "o/..", "o/r?x=1", "o/r#x", "o /r", "o/r%2F", "o/"} {
		if _, err := c.Project(ctx, p); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("Project(%q) = %v, want invalid", p, err)
		}
	}
	if err := c.DeleteHook(ctx, "o/r", "1 OR 1"); !apperr.Is(err, apperr.CodeInvalid) {
		t.Errorf("DeleteHook(bad id) = %v, want invalid", err)
	}
	for _, spec := range []forge.HookSpec{{URL: "https://x.example/h"}, {URL: "javascript:alert(1)", Secret: "s"}, {URL: "", Secret: "s"}} {
		if _, err := c.CreateHook(ctx, "o/r", spec); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("CreateHook(%+v) = %v, want invalid", spec, err)
		}
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("invalid arguments reached GitHub: %q", got)
	}
}

func TestErrorMapping(t *testing.T) {
	errBody := testenv.Fixture(t, "github-api/error.go-scm.json")
	tests := []struct {
		name   string
		status int
		header http.Header
		body   []byte
		want   apperr.Code
	}{
		{"404", 404, nil, errBody, apperr.CodeNotFound},
		{"401", 401, nil, []byte(`{"message":"Bad credentials"}`), apperr.CodeUnauthorized},
		{"403 without rate limit", 403, http.Header{"X-Ratelimit-Remaining": {"4999"}}, []byte(`{"message":"Resource not accessible by integration"}`), apperr.CodeForbidden},
		{"403 rate limit exhausted until later", 403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1512079618"}}, []byte(`{"message":"API rate limit exceeded"}`), apperr.CodeUnavailable},
		{"422", 422, nil, []byte(`{"message":"Validation Failed"}`), apperr.CodeInvalid},
		{"500", 500, nil, []byte(`oops`), apperr.CodeUnavailable},
		{"502", 502, nil, nil, apperr.CodeUnavailable},
		{"unreadable 200", 200, nil, []byte(`{"id":`), apperr.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.handle("GET /api/v3/repos/o/r", serveJSON(t, tt.status, tt.body, tt.header))
			c, waits := f.client(t)
			c.now = func() time.Time { return time.Unix(1512076018, 0) } // reset is an hour away
			_, err := c.Project(context.Background(), "o/r")
			if got := apperr.CodeOf(err); got != tt.want {
				t.Fatalf("err = %v (code %s), want code %s", err, got, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the token: %v", err)
			}
			if len(*waits) != 0 || len(f.requests()) != 1 {
				t.Errorf("waits %v, requests %q; want one request and no wait", *waits, f.requests())
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	f := newFake(t)
	c, _ := f.client(t)
	f.srv.Close()
	_, err := c.Project(context.Background(), "o/r")
	if !apperr.Is(err, apperr.CodeUnavailable) {
		t.Errorf("err = %v, want unavailable", err)
	}
}

// TestRateLimitBackoff plays GitHub's rate-limit answers, with the fixture's rate headers,
// and checks the bounded, header-driven retries. Waits are virtual.
func TestRateLimitBackoff(t *testing.T) {
	rate := testenv.FixtureHeaders(t, "github-api/ratelimit_and_link.go-scm.headers.txt")
	reset := rate.Get("X-RateLimit-Reset") // 1512076018
	now := func() time.Time { return time.Unix(1512076018-3, 0) }
	exhausted := http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}
	primary := []byte(`{"message":"API rate limit exceeded for xxx.xxx.xxx.xxx.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`)
	secondary := []byte(`{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	ok := answer{200, rate, nil}
	tests := []struct {
		name      string
		answers   []answer // the last one repeats
		wantWaits []time.Duration
		wantCode  apperr.Code // "" for success
	}{
		{"403 exhausted, waits until X-RateLimit-Reset", []answer{{403, exhausted, primary}, ok}, []time.Duration{3 * time.Second}, ""},
		{"429 exhausted, waits until X-RateLimit-Reset", []answer{{429, exhausted, primary}, ok}, []time.Duration{3 * time.Second}, ""},
		{"429 honours Retry-After", []answer{{429, http.Header{"Retry-After": {"7"}}, nil}, ok}, []time.Duration{7 * time.Second}, ""},
		{"403 secondary limit with Retry-After", []answer{{403, http.Header{"Retry-After": {"2"}}, secondary}, ok}, []time.Duration{2 * time.Second}, ""},
		{"Retry-After beats X-RateLimit-Reset", []answer{{429, http.Header{"Retry-After": {"1"}, "X-Ratelimit-Reset": {reset}}, nil}, ok}, []time.Duration{time.Second}, ""},
		{"429 without headers backs off", []answer{{429, nil, nil}, {429, nil, nil}, ok}, []time.Duration{time.Second, 2 * time.Second}, ""},
		{"reset already past waits a second", []answer{{403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1512076000"}}, primary}, ok}, []time.Duration{time.Second}, ""},
		{"at most three retries", []answer{{429, http.Header{"Retry-After": {"1"}}, nil}}, []time.Duration{time.Second, time.Second, time.Second}, apperr.CodeUnavailable},
		{"at most 30s in all", []answer{{429, http.Header{"Retry-After": {"20"}}, nil}}, []time.Duration{20 * time.Second}, apperr.CodeUnavailable},
		{"a reset beyond the budget fails at once", []answer{{403, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1512079618"}}, primary}}, nil, apperr.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			var mu sync.Mutex
			n := 0
			f.handle("POST /api/v3/repos/o/r/hooks", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				a := tt.answers[min(n, len(tt.answers)-1)]
				n++
				mu.Unlock()
				body := a.body
				if a.status == 200 {
					body = testenv.Fixture(t, "github-api/hook_get.go-scm.json")
				}
				serveJSON(t, a.status, body, a.header)(w, r)
			})
			c, waits := f.client(t)
			c.now = now
			h, err := c.CreateHook(context.Background(), "o/r", forge.HookSpec{URL: "https://fabu.example/h", Secret: "s"})
			if tt.wantCode == "" {
				if err != nil || h.ID != "1" {
					t.Fatalf("CreateHook = %+v, %v; want hook 1", h, err)
				}
			} else if got := apperr.CodeOf(err); got != tt.wantCode {
				t.Fatalf("err = %v (code %s), want %s", err, got, tt.wantCode)
			}
			if len(*waits)+len(tt.wantWaits) > 0 && !reflect.DeepEqual(*waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", *waits, tt.wantWaits)
			}
			if got, want := len(f.requests()), len(tt.wantWaits)+1; got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}

// TestRateLimitWaitHonoursContext waits for real and checks a cancelled context ends it.
func TestRateLimitWaitHonoursContext(t *testing.T) {
	f := newFake(t)
	f.handle("GET /api/v3/repos/o/r", serveJSON(t, 429, nil, http.Header{"Retry-After": {"10"}}))
	c, err := New(forge.Connection{BaseURL: f.srv.URL, Token: testToken}, WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Project(ctx, "o/r")
	if !apperr.Is(err, apperr.CodeUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want unavailable wrapping context.DeadlineExceeded", err)
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestGitHubDotCom checks a github.com connection calls api.github.com with the documented
// headers, through the caller's http.Client.
func TestGitHubDotCom(t *testing.T) {
	var got *http.Request
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{
			StatusCode: 200, Request: r,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(bytes.NewReader(testenv.Fixture(t, "github-api/repo_get.go-scm.json"))),
		}, nil
	})}
	c, err := New(forge.Connection{Platform: forge.GitHub, BaseURL: "https://github.com", Token: testToken}, WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Project(context.Background(), "octocat/Hello-World"); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.URL.String() != "https://api.github.com/repos/octocat/Hello-World" {
		t.Fatalf("request = %v, want GET https://api.github.com/repos/octocat/Hello-World", got)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + testToken, "Accept": "application/vnd.github+json",
		"X-GitHub-Api-Version": "2022-11-28", "User-Agent": "fabu",
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
}

// A hook's last_response is the platform's view of the latest delivery: its status code
// and GitHub's words; before any delivery the code is null.
func TestHookLastResponse(t *testing.T) {
	var list []map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, "github-api/hooks_list.go-scm.json"), &list); err != nil || len(list) == 0 {
		t.Fatalf("fixture: %v", err)
	}
	failing, unused := map[string]any{}, map[string]any{}
	for k, v := range list[0] {
		failing[k], unused[k] = v, v
	}
	failing["last_response"] = map[string]any{"code": 502, "status": "active", "message": "Bad Gateway"}
	unused["id"], unused["last_response"] = 2, map[string]any{"code": nil, "status": "unused", "message": nil}
	body, _ := json.Marshal([]any{failing, unused})
	f := newFake(t)
	c, _ := f.client(t)
	f.handle("GET /api/v3/repos/o/r/hooks", serveJSON(t, 200, body, nil))
	hs, err := c.Hooks(context.Background(), "o/r")
	if err != nil || len(hs) != 2 {
		t.Fatalf("Hooks = %+v, %v", hs, err)
	}
	if hs[0].LastStatus != 502 || hs[0].LastResult != "active: Bad Gateway" {
		t.Errorf("failing hook: status %d result %q", hs[0].LastStatus, hs[0].LastResult)
	}
	if hs[1].LastStatus != 0 || hs[1].LastResult != "unused" {
		t.Errorf("unused hook: status %d result %q", hs[1].LastStatus, hs[1].LastResult)
	}
}
