package gitlab

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
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

const token = "glpat-tok5ecret0123456789"

// apiCall is one request the fake GitLab received.
type apiCall struct {
	Method, Path string // Path as sent, still escaped
	Query        map[string]string
	Body         []byte
}

// fakeGitLab plays GitLab's API: it refuses requests without the token, records each call
// and hands it to handle.
type fakeGitLab struct {
	t      *testing.T
	srv    *httptest.Server
	bearer bool
	mu     sync.Mutex
	calls  []apiCall
	handle func(w http.ResponseWriter, r *http.Request, n int)
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fakeGitLab {
	f := &fakeGitLab{t: t, handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitLab) serve(w http.ResponseWriter, r *http.Request) {
	authOK := r.Header.Get("PRIVATE-TOKEN") == token && r.Header.Get("Authorization") == ""
	if f.bearer {
		authOK = r.Header.Get("Authorization") == "Bearer "+token && r.Header.Get("PRIVATE-TOKEN") == ""
	}
	if !authOK {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"401 Unauthorized"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	path, _, _ := strings.Cut(r.RequestURI, "?")
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = strings.Join(v, ",")
	}
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{Method: r.Method, Path: path, Query: q, Body: body})
	n := len(f.calls)
	f.mu.Unlock()
	f.handle(w, r, n)
}

func (f *fakeGitLab) Calls() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

func (f *fakeGitLab) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(forge.Connection{Platform: forge.GitLab, BaseURL: f.srv.URL, Token: token}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.retry.base = 10 * time.Millisecond
	return c
}

// reply writes a JSON body with headers, as GitLab does.
func reply(w http.ResponseWriter, status int, body []byte, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// pageHeaders builds GitLab's offset pagination headers, in the shape of
// pagination.docs.headers.txt; next 0 is the last page (empty X-Next-Page, no rel=next).
func pageHeaders(base string, page, perPage, next, total int) http.Header {
	h := http.Header{}
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s?page=%d&per_page=%d>; rel="%s"`, base, p, perPage, rel)
	}
	var links []string
	if next > 0 {
		links = append(links, link(next, "next"))
		h.Set("X-Next-Page", strconv.Itoa(next))
	} else {
		h.Set("X-Next-Page", "")
	}
	links = append(links, link(1, "first"), link(total, "last"))
	h.Set("Link", strings.Join(links, ", "))
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total-Pages", strconv.Itoa(total))
	return h
}

func TestProjectsPages(t *testing.T) {
	list := testenv.Fixture(t, "gitlab-api/projects_list.go-scm.json")
	var f *fakeGitLab
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		next := 0
		if page == 1 {
			next = 2
		}
		reply(w, 200, list, pageHeaders(f.srv.URL+"/api/v4/projects", page, 100, next, 2))
	})
	c := f.client(t)
	ctx := context.Background()
	ps, pi, err := c.Projects(ctx, forge.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pi.NextPage != 2 {
		t.Errorf("page 1 NextPage = %d, want 2", pi.NextPage)
	}
	want := forge.Project{
		ID: "178504", Path: "diaspora/diaspora", Name: "Diaspora", Namespace: "diaspora", DefaultBranch: "master",
		HTTPURL: "https://gitlab.com/diaspora/diaspora.git", SSHURL: "git@gitlab.com:diaspora/diaspora.git",
		WebURL: "https://gitlab.com/diaspora/diaspora", UpdatedAt: time.Date(2015, 3, 3, 18, 37, 20, 795e6, time.UTC),
	}
	if len(ps) != 1 || !ps[0].UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("projects = %+v, want [%+v]", ps, want)
	}
	ps[0].UpdatedAt = want.UpdatedAt
	if ps[0] != want {
		t.Errorf("project = %+v, want %+v", ps[0], want)
	}
	_, pi, err = c.Projects(ctx, forge.ListOptions{Page: pi.NextPage, PerPage: 500, Search: "dia spora"})
	if err != nil || pi.NextPage != 0 {
		t.Fatalf("page 2: NextPage = %d, err = %v; want 0, nil", pi.NextPage, err)
	}
	calls := f.Calls()
	wantQ := []map[string]string{
		{"membership": "true", "page": "1", "per_page": "100"},
		{"membership": "true", "page": "2", "per_page": "100", "search": "dia spora"},
	}
	for i, call := range calls {
		if call.Method != "GET" || call.Path != "/api/v4/projects" || fmt.Sprint(call.Query) != fmt.Sprint(wantQ[i]) {
			t.Errorf("call %d = %s %s %v, want GET /api/v4/projects %v", i, call.Method, call.Path, call.Query, wantQ[i])
		}
	}
}

// The recorded header sets: the docs' full set (X-Next-Page) and go-scm's (Link only, as
// GitLab.com sends for large collections without totals).
func TestPageInfoFromRecordedHeaders(t *testing.T) {
	tests := []struct {
		file string
		want int
	}{
		{"gitlab-api/pagination.docs.headers.txt", 3},
		{"gitlab-api/ratelimit_and_link.go-scm.headers.txt", 2},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range testenv.FixtureHeaders(t, tc.file) {
				if k == "Link" || strings.HasPrefix(k, "X-") || strings.HasPrefix(k, "Ratelimit-") {
					h[k] = vs
				}
			}
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				reply(w, 200, testenv.Fixture(t, "gitlab-api/branches_list.go-scm.json"), h)
			})
			refs, pi, err := f.client(t).Branches(context.Background(), "diaspora/diaspora", forge.ListOptions{})
			if err != nil || len(refs) != 1 || pi.NextPage != tc.want {
				t.Errorf("Branches = %d refs, %+v, %v; want 1 ref, NextPage %d", len(refs), pi, err, tc.want)
			}
		})
	}
}

func TestProjectPathEscaped(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 200, testenv.Fixture(t, "gitlab-api/project_get.go-scm.json"), nil)
	})
	p, err := f.client(t).Project(context.Background(), "group/sub/name.x")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "178504" || p.Path != "diaspora/diaspora" || p.Namespace != "diaspora" || p.Archived {
		t.Errorf("project = %+v", p)
	}
	if got := f.Calls()[0].Path; got != "/api/v4/projects/group%2Fsub%2Fname%2Ex" {
		t.Errorf("path = %s, want /api/v4/projects/group%%2Fsub%%2Fname%%2Ex", got)
	}
}

func TestRefsAndCommits(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/repository/branches"):
			reply(w, 200, testenv.Fixture(t, "gitlab-api/branches_list.go-gitlab.json"), nil)
		case strings.HasSuffix(r.URL.Path, "/repository/tags"):
			reply(w, 200, testenv.Fixture(t, "gitlab-api/tags_list.go-scm.json"), nil)
		case strings.HasSuffix(r.URL.Path, "/repository/commits"):
			reply(w, 200, testenv.Fixture(t, "gitlab-api/commits_list.go-scm.json"), nil)
		default:
			reply(w, 404, []byte(`{"message":"404 Not Found"}`), nil)
		}
	})
	c, ctx := f.client(t), context.Background()
	bs, _, err := c.Branches(ctx, "g/p", forge.ListOptions{Search: "mas", PerPage: 20})
	if err != nil || len(bs) != 1 || bs[0] != (forge.Ref{Kind: forge.Branch, Name: "master", Commit: "7b5c3cc8be40ee161ae89a06bba6229da1032a0c", Protected: true}) {
		t.Errorf("Branches = %+v, %v", bs, err)
	}
	ts, _, err := c.Tags(ctx, "g/p", forge.ListOptions{Search: "v1"})
	if err != nil || len(ts) != 1 || ts[0] != (forge.Ref{Kind: forge.Tag, Name: "v1.0.0", Commit: "2695effb5807a22ff3d138d593fd856244e155e7"}) {
		t.Errorf("Tags = %+v, %v", ts, err)
	}
	cs, _, err := c.Commits(ctx, "g/p", forge.ListOptions{Ref: "release/1.x"})
	wantTime := time.Date(2012, 6, 28, 10, 44, 20, 0, time.UTC)
	if err != nil || len(cs) != 1 || cs[0].SHA != "6104942438c14ec7bd21c6cd5bd995272b3faff6" || cs[0].Author != "randx" ||
		cs[0].Message != "Sanitize for network graph" || !cs[0].Time.Equal(wantTime) {
		t.Errorf("Commits = %+v, %v", cs, err)
	}
	want := []apiCall{
		{Method: "GET", Path: "/api/v4/projects/g%2Fp/repository/branches", Query: map[string]string{"page": "1", "per_page": "20", "search": "mas"}},
		{Method: "GET", Path: "/api/v4/projects/g%2Fp/repository/tags", Query: map[string]string{"page": "1", "per_page": "100", "search": "v1"}},
		{Method: "GET", Path: "/api/v4/projects/g%2Fp/repository/commits", Query: map[string]string{"page": "1", "per_page": "100", "ref_name": "release/1.x"}},
	}
	checkCalls(t, f.Calls(), want)
}

func checkCalls(t *testing.T, got, want []apiCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d calls %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Method != want[i].Method || got[i].Path != want[i].Path || fmt.Sprint(got[i].Query) != fmt.Sprint(want[i].Query) {
			t.Errorf("call %d = %s %s %v, want %s %s %v", i, got[i].Method, got[i].Path, got[i].Query, want[i].Method, want[i].Path, want[i].Query)
		}
	}
}

func TestHooks(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case r.Method == "GET":
			reply(w, 200, testenv.Fixture(t, "gitlab-api/hooks_list.go-scm.json"), nil)
		case r.Method == "POST":
			reply(w, 201, testenv.Fixture(t, "gitlab-api/hook_create_response.go-scm.json"), nil)
		case r.Method == "DELETE" && strings.HasSuffix(r.URL.Path, "/hooks/1"):
			w.WriteHeader(204)
		default:
			reply(w, 404, []byte(`{"message":"404 Not Found"}`), nil)
		}
	})
	c, ctx := f.client(t), context.Background()
	hs, err := c.Hooks(ctx, "g/sub/p")
	wantEvents := "[push tag_push merge_requests issues note job pipeline wiki_page]"
	if err != nil || len(hs) != 1 || hs[0].ID != "1" || hs[0].URL != "http://example.com/hook" || !hs[0].Active || fmt.Sprint(hs[0].Events) != wantEvents {
		t.Errorf("Hooks = %+v, %v", hs, err)
	}
	for _, tc := range []struct {
		url     string
		wantSSL bool
	}{{"https://fabu.example.com/hooks/gitlab/7", true}, {"http://10.0.0.5:8080/hooks/gitlab/7", false}} {
		h, err := c.CreateHook(ctx, "g/sub/p", forge.HookSpec{URL: tc.url, Secret: "hook-secret"})
		if err != nil || h.ID != "1" {
			t.Errorf("CreateHook(%s) = %+v, %v", tc.url, h, err)
		}
		calls := f.Calls()
		var body map[string]any
		if err := json.Unmarshal(calls[len(calls)-1].Body, &body); err != nil {
			t.Fatalf("create body %q: %v", calls[len(calls)-1].Body, err)
		}
		want := map[string]any{"url": tc.url, "token": "hook-secret", "push_events": true, "tag_push_events": true, "enable_ssl_verification": tc.wantSSL}
		if fmt.Sprint(body) != fmt.Sprint(want) {
			t.Errorf("create body = %v, want %v", body, want)
		}
	}
	if err := c.DeleteHook(ctx, "g/sub/p", "1"); err != nil {
		t.Errorf("DeleteHook(1) = %v", err)
	}
	if err := c.DeleteHook(ctx, "g/sub/p", "2"); err != nil {
		t.Errorf("DeleteHook of a hook already gone = %v, want nil", err)
	}
	checkCalls(t, f.Calls(), []apiCall{
		{Method: "GET", Path: "/api/v4/projects/g%2Fsub%2Fp/hooks", Query: map[string]string{"page": "1", "per_page": "100"}},
		{Method: "POST", Path: "/api/v4/projects/g%2Fsub%2Fp/hooks", Query: map[string]string{}},
		{Method: "POST", Path: "/api/v4/projects/g%2Fsub%2Fp/hooks", Query: map[string]string{}},
		{Method: "DELETE", Path: "/api/v4/projects/g%2Fsub%2Fp/hooks/1", Query: map[string]string{}},
		{Method: "DELETE", Path: "/api/v4/projects/g%2Fsub%2Fp/hooks/2", Query: map[string]string{}},
	})
}

// Hooks follows pages, and a server that never stops announcing one does not loop forever.
func TestHooksPages(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		h := http.Header{}
		if r.URL.Path == "/api/v4/projects/two/hooks" && page == 1 || r.URL.Path == "/api/v4/projects/endless/hooks" {
			h.Set("X-Next-Page", strconv.Itoa(page+1))
		}
		reply(w, 200, testenv.Fixture(t, "gitlab-api/hooks_list.go-scm.json"), h)
	})
	c := f.client(t)
	if hs, err := c.Hooks(context.Background(), "two"); err != nil || len(hs) != 2 {
		t.Errorf("Hooks over two pages = %d hooks, %v; want 2", len(hs), err)
	}
	if _, err := c.Hooks(context.Background(), "endless"); !apperr.Is(err, apperr.CodeUnavailable) {
		t.Errorf("Hooks with endless pages = %v, want unavailable", err)
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(500) })
	c, ctx := f.client(t), context.Background()
	checks := map[string]error{
		"empty project":   func() error { _, err := c.Project(ctx, ""); return err }(),
		"slash project":   func() error { _, _, err := c.Branches(ctx, "/g/p", forge.ListOptions{}); return err }(),
		"control project": func() error { _, _, err := c.Tags(ctx, "g/p\n", forge.ListOptions{}); return err }(),
		"negative page":   func() error { _, _, err := c.Commits(ctx, "g/p", forge.ListOptions{Page: -1}); return err }(),
		"relative hook": func() error {
			_, err := c.CreateHook(ctx, "g/p", forge.HookSpec{URL: "/hook", Secret: "s"})
			return err
		}(),
		"ftp hook": func() error {
			_, err := c.CreateHook(ctx, "g/p", forge.HookSpec{URL: "ftp://x/h", Secret: "s"})
			return err
		}(),
		"no secret": func() error { _, err := c.CreateHook(ctx, "g/p", forge.HookSpec{URL: "https://x/h"}); return err }(),
		"newline secret": func() error {
			_, err := c.CreateHook(ctx, "g/p", forge.HookSpec{URL: "https://x/h", Secret: "a\nb"})
			return err
		}(),
		"hook id not int":  c.DeleteHook(ctx, "g/p", "1/../2"),
		"hook id negative": c.DeleteHook(ctx, "g/p", "-3"),
	}
	for name, err := range checks {
		if !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if n := len(f.Calls()); n != 0 {
		t.Errorf("%d requests sent for invalid input, want 0", n)
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		status int
		header http.Header
		want   apperr.Code
	}{
		{400, nil, apperr.CodeInvalid},
		{401, nil, apperr.CodeUnauthorized},
		{403, nil, apperr.CodeForbidden},
		{403, http.Header{"Ratelimit-Remaining": {"0"}}, apperr.CodeUnavailable},
		{404, nil, apperr.CodeNotFound},
		{409, nil, apperr.CodeConflict},
		{422, nil, apperr.CodeInvalid},
		{429, http.Header{"Retry-After": {"1"}}, apperr.CodeUnavailable},
		{500, nil, apperr.CodeUnavailable},
		{502, nil, apperr.CodeUnavailable},
		{503, nil, apperr.CodeUnavailable},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status, tc.header), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				reply(w, tc.status, []byte(`{"message":"nope"}`), tc.header)
			})
			_, err := f.client(t, WithRetry(0, 0)).Project(context.Background(), "g/p")
			if got := apperr.CodeOf(err); got != tc.want {
				t.Errorf("code = %s (%v), want %s", got, err, tc.want)
			}
			if len(f.Calls()) != 1 {
				t.Errorf("%d calls with retries off, want 1", len(f.Calls()))
			}
		})
	}
}

func TestAuthHeaders(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 200, testenv.Fixture(t, "gitlab-api/project_get.go-scm.json"), nil)
	})
	if _, err := f.client(t).Project(context.Background(), "1"); err != nil {
		t.Errorf("PRIVATE-TOKEN: %v", err)
	}
	f.bearer = true
	if _, err := f.client(t, WithBearerToken()).Project(context.Background(), "1"); err != nil {
		t.Errorf("Bearer: %v", err)
	}
	if _, err := f.client(t).Project(context.Background(), "1"); !apperr.Is(err, apperr.CodeUnauthorized) {
		t.Errorf("PRIVATE-TOKEN where Bearer is wanted: %v, want unauthorized", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		conn forge.Connection
		want string // "" = invalid
	}{
		{"gitlab.com by default", forge.Connection{Token: "t"}, "https://gitlab.com"},
		{"self-hosted", forge.Connection{Platform: forge.GitLab, BaseURL: "https://git.example.com/", Token: "t"}, "https://git.example.com"},
		{"path prefix and api suffix", forge.Connection{BaseURL: "http://10.0.0.2:8929/gitlab/api/v4/", Token: "t"}, "http://10.0.0.2:8929/gitlab"},
		{"other platform", forge.Connection{Platform: forge.GitHub, Token: "t"}, ""},
		{"no token", forge.Connection{BaseURL: "https://git.example.com"}, ""},
		{"no scheme", forge.Connection{BaseURL: "git.example.com", Token: "t"}, ""},
		{"ftp", forge.Connection{BaseURL: "ftp://git.example.com", Token: "t"}, ""},
		{"credentials", forge.Connection{BaseURL: "https://u:p@git.example.com", Token: "t"}, ""},
		{"query", forge.Connection{BaseURL: "https://git.example.com/?x=1", Token: "t"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.conn)
			if tc.want == "" {
				if !apperr.Is(err, apperr.CodeInvalid) {
					t.Errorf("New = %v, %v; want invalid", c, err)
				}
				return
			}
			if err != nil || c.BaseURL() != tc.want || c.Platform() != forge.GitLab {
				t.Errorf("New = %v, %v; want base %s", c, err, tc.want)
			}
		})
	}
	if _, err := New(forge.Connection{Token: "t"}, WithRetry(-1, 0)); !apperr.Is(err, apperr.CodeInvalid) {
		t.Errorf("negative retries: %v, want invalid", err)
	}
	c, _ := New(forge.Connection{Token: token})
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); strings.Contains(s, token) {
		t.Errorf("formatting the client shows the token: %s", s)
	}
}

func TestSelfHostedPathPrefix(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 200, []byte("[]"), nil)
	})
	c, err := New(forge.Connection{BaseURL: f.srv.URL + "/gitlab", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Projects(context.Background(), forge.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := f.Calls()[0].Path; p != "/gitlab/api/v4/projects" {
		t.Errorf("path = %s, want /gitlab/api/v4/projects", p)
	}
}

// client-go's Link parser would panic on a rel without "="; the client drops such a header.
func TestMalformedLinkHeader(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		reply(w, 200, []byte("[]"), http.Header{"Link": {`<https://x/?page=2>; next`}, "X-Next-Page": {"2"}})
	})
	_, pi, err := f.client(t).Projects(context.Background(), forge.ListOptions{})
	if err != nil || pi.NextPage != 2 {
		t.Errorf("Projects = %+v, %v; want NextPage 2 from X-Next-Page", pi, err)
	}
}

func TestTransportErrorIsUnavailable(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) {})
	c := f.client(t, WithRetry(0, 0))
	f.srv.Close()
	_, err := c.Project(context.Background(), "g/p")
	if !apperr.Is(err, apperr.CodeUnavailable) || strings.Contains(err.Error(), token) {
		t.Errorf("closed server: %v, want unavailable without the token", err)
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) || strings.Contains(ae.Message, "127.0.0.1") {
		t.Errorf("public message %q should name the operation, not the transport", ae.Message)
	}
}

// GitLab disables a hook that keeps failing: alert_status tells, and disabled_until when it
// resumes by itself.
func TestDisabledHook(t *testing.T) {
	var list []map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, "gitlab-api/hooks_list.go-scm.json"), &list); err != nil || len(list) == 0 {
		t.Fatalf("fixture: %v", err)
	}
	list[0]["alert_status"], list[0]["disabled_until"] = "temporarily_disabled", "2026-12-06T11:00:00Z"
	body, _ := json.Marshal(list)
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ int) { reply(w, 200, body, nil) })
	hs, err := f.client(t).Hooks(context.Background(), "g/p")
	if err != nil || len(hs) != 1 {
		t.Fatalf("Hooks = %+v, %v", hs, err)
	}
	want := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	if h := hs[0]; h.Active || h.LastResult != "temporarily disabled" || h.DisabledUntil == nil || !h.DisabledUntil.Equal(want) {
		t.Errorf("hook = %+v, want inactive, temporarily disabled until %s", h, want)
	}
}
