package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"fabu.dev/libs/httpx"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/services/auth/oauthtest"
)

const (
	glClientID, glSecret = "gitlab-app-id", "gitlab-app-secret-0123456789"
	ghClientID, ghSecret = "Iv1.github-client", "github-client-secret-0123456789"
)

// oauthEnv is the auth service behind a real HTTP server with a fake GitLab and a fake
// GitHub configured as sign-in providers.
type oauthEnv struct {
	t   *testing.T
	db  *store.DB
	clk *clock
	s   *Service
	a   *api
	gl  *oauthtest.GitLab
	gh  *oauthtest.GitHub
}

// newOAuthEnv starts the service on driver's database; mod changes the provider config
// (index 0 is GitLab, 1 GitHub) or the service config.
func newOAuthEnv(t *testing.T, driver string, mod ...func(*Config)) *oauthEnv {
	t.Helper()
	db := storetest.Open(t, driver)
	gl := oauthtest.NewGitLab(glClientID, glSecret)
	t.Cleanup(gl.Close)
	gh := oauthtest.NewGitHub(ghClientID, ghSecret)
	t.Cleanup(gh.Close)
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	clk := newClock()
	s := newService(t, db, clk, append([]func(*Config){func(c *Config) {
		c.IPBurst = 1000 // many sign-ins from one address; TestOAuthRateLimit lowers it
		c.OAuth = OAuthConfig{PublicURL: srv.URL, Providers: []OAuthProvider{
			{Name: ProviderGitLab, BaseURL: gl.URL(), ClientID: glClientID, ClientSecret: glSecret},
			{Name: ProviderGitHub, BaseURL: gh.URL(), ClientID: ghClientID, ClientSecret: ghSecret},
		}}
	}}, mod...)...)
	engine := httpx.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Routes(engine)
	handler = engine
	gl.Now = clk.Now
	gl.RedirectURI = srv.URL + "/api/v1/auth/oauth/gitlab/callback"
	gh.RedirectURI = srv.URL + "/api/v1/auth/oauth/github/callback"
	return &oauthEnv{t: t, db: db, clk: clk, s: s, a: &api{t: t, url: srv.URL}, gl: gl, gh: gh}
}

// browser is an HTTP client with a cookie jar that does not follow redirects, recording
// every URL it was sent to, like a browser's history and the servers' access logs.
type browser struct {
	t    *testing.T
	c    *http.Client
	mu   sync.Mutex
	urls []string
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends a request and returns the status, the Location header and the body.
func (b *browser) do(method, u, token string, body any) (int, string, []byte) {
	b.t.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		b.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	b.mu.Lock()
	b.urls = append(b.urls, u)
	b.mu.Unlock()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "" {
		b.mu.Lock()
		b.urls = append(b.urls, loc)
		b.mu.Unlock()
	}
	return resp.StatusCode, loc, out
}

func (b *browser) get(u string) (int, string) {
	st, loc, _ := b.do(http.MethodGet, u, "", nil)
	return st, loc
}

// toProvider starts a sign-in for provider and returns the provider's callback URL with
// code and state, without visiting it.
func (e *oauthEnv) toProvider(b *browser, provider, redirect string) string {
	e.t.Helper()
	st, loc := b.get(e.a.url + "/api/v1/auth/oauth/" + provider + "/start?redirect=" + url.QueryEscape(redirect))
	if st != http.StatusFound || loc == "" {
		e.t.Fatalf("start: %d %q, want a redirect to the provider", st, loc)
	}
	return e.authorize(b, loc)
}

// authorize visits the provider's authorization URL and returns where it sends the browser.
func (e *oauthEnv) authorize(b *browser, authURL string) string {
	e.t.Helper()
	st, back := b.get(authURL)
	if st != http.StatusFound || !strings.HasPrefix(back, e.a.url+"/api/v1/auth/oauth/") {
		e.t.Fatalf("provider authorize %s: %d %q, want a redirect to fabu's callback", authURL, st, back)
	}
	return back
}

// callback visits the callback URL and returns the SPA page and the fragment's values.
func (e *oauthEnv) callback(b *browser, cb string) (string, url.Values) {
	e.t.Helper()
	st, loc := b.get(cb)
	if st != http.StatusFound {
		e.t.Fatalf("callback: %d, want 302", st)
	}
	page, frag, _ := strings.Cut(loc, "#")
	v, err := url.ParseQuery(frag)
	if err != nil {
		e.t.Fatalf("callback redirect %q: %v", loc, err)
	}
	return page, v
}

// exchange trades a one-time code for tokens in browser b.
func (e *oauthEnv) exchange(b *browser, code string) (int, OAuthSession) {
	e.t.Helper()
	st, _, body := b.do(http.MethodPost, e.a.url+"/api/v1/auth/oauth/exchange", "", map[string]string{"code": code})
	var out OAuthSession
	if st == http.StatusOK {
		if err := json.Unmarshal(body, &out); err != nil {
			e.t.Fatalf("exchange answer %s: %v", body, err)
		}
	}
	e.a.mu.Lock()
	e.a.answers = append(e.a.answers, "POST /oauth/exchange → "+string(body))
	e.a.mu.Unlock()
	return st, out
}

// signIn runs the whole sign-in in b and returns the tokens; it fails the test unless the
// sign-in succeeds.
func (e *oauthEnv) signIn(b *browser, provider string) OAuthSession {
	e.t.Helper()
	page, frag := e.callback(b, e.toProvider(b, provider, "/projects"))
	if page != "/login" || frag.Get("oauth_code") == "" {
		e.t.Fatalf("sign-in through %s ended at %s#%s, want /login with a code", provider, page, frag.Encode())
	}
	st, out := e.exchange(b, frag.Get("oauth_code"))
	if st != http.StatusOK || out.AccessToken == "" || out.RefreshToken == "" {
		e.t.Fatalf("exchange: %d %+v", st, out)
	}
	return out
}

// signInError runs a sign-in that must be refused and returns the error code shown.
func (e *oauthEnv) signInError(b *browser, provider string) string {
	e.t.Helper()
	page, frag := e.callback(b, e.toProvider(b, provider, "/projects"))
	if page != "/login" || frag.Get("oauth_code") != "" || frag.Get("oauth_error") == "" {
		e.t.Fatalf("refused sign-in through %s ended at %s#%s, want /login with an error", provider, page, frag.Encode())
	}
	return frag.Get("oauth_error")
}

// link links provider's current user to the user signed in with tok, in browser b, and
// returns the page and fragment it ends at.
func (e *oauthEnv) link(b *browser, provider, tok string) (string, url.Values) {
	e.t.Helper()
	st, _, body := b.do(http.MethodPost, e.a.url+"/api/v1/auth/oauth/"+provider+"/link", tok, nil)
	var ls LinkStart
	if st != http.StatusOK || json.Unmarshal(body, &ls) != nil || ls.URL == "" {
		e.t.Fatalf("link %s: %d %s", provider, st, body)
	}
	return e.callback(b, e.authorize(b, ls.URL))
}

// identities returns the provider:subject → user_id links.
func (e *oauthEnv) identities() map[string]string {
	e.t.Helper()
	var rows []userIdentity
	if err := e.db.Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Provider+":"+r.Subject] = r.UserID
	}
	return out
}

func (e *oauthEnv) userCount() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Model(&User{}).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}
