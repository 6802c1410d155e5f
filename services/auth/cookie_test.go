package auth

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/store/storetest"
)

// answer is what browserCall got: the status, the refresh cookie it set (or nil) and the
// decoded body.
type answer struct {
	status int
	cookie *http.Cookie
	body   map[string]any
}

// browserCall sends a request as Chromium would from a page at origin (empty: a non-browser
// client), with the refresh cookie if not empty.
func (a *api) browserCall(method, path, origin, cookie, bearer, body string) answer {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if origin != "" {
		req.Header.Set("Origin", origin)
		site := "same-origin"
		if origin != a.url {
			site = "cross-site"
		}
		req.Header.Set("Sec-Fetch-Site", site)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: refreshCookie, Value: cookie})
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := answer{status: resp.StatusCode, cookie: refreshCookieOf(resp)}
	_ = json.Unmarshal(b, &out.body)
	return out
}

// refreshCookieOf is the refresh cookie an answer sets, or nil.
func refreshCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == refreshCookie {
			return c
		}
	}
	return nil
}

// TestBrowserSessionCookie: a browser's login puts the refresh token into an HttpOnly,
// SameSite=Strict cookie for the refresh route and not into the body; refresh works from
// that cookie, rotating it, and is refused from other origins; logout deletes the cookie
// and ends the session. Clients that send the refresh token in the body keep working.
func TestBrowserSessionCookie(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	a := serve(t, newService(t, db, nil))
	login := `{"username":"alice","password":"` + alicePassword + `"}`

	r := a.browserCall("POST", "/api/v1/auth/login", a.url, "", "", login)
	if r.status != http.StatusOK {
		t.Fatalf("browser login: status %d %v", r.status, r.body)
	}
	if _, ok := r.body["refresh_token"]; ok {
		t.Errorf("a browser's login answer holds the refresh token: %v", r.body)
	}
	if access, _ := r.body["access_token"].(string); access == "" {
		t.Errorf("a browser's login answer holds no access token: %v", r.body)
	}
	first := r.cookie
	if first == nil {
		t.Fatalf("login set no %s cookie", refreshCookie)
	}
	if !first.HttpOnly || first.SameSite != http.SameSiteStrictMode || first.Path != "/api/v1/auth/refresh" ||
		first.MaxAge <= 0 || first.Secure || first.Value == "" {
		t.Errorf("cookie = %q, want HttpOnly, SameSite=Strict, Path=/api/v1/auth/refresh, Max-Age > 0, not Secure over http",
			first.String())
	}

	// Other origins are refused, and the refusal does not use up the cookie.
	for _, origin := range []string{"https://evil.example", "http://127.0.0.1:1"} {
		if r = a.browserCall("POST", "/api/v1/auth/refresh", origin, first.Value, "", ""); r.status != http.StatusForbidden {
			t.Errorf("refresh from %s: status %d, want 403", origin, r.status)
		}
	}

	r = a.browserCall("POST", "/api/v1/auth/refresh", a.url, first.Value, "", "")
	if r.status != http.StatusOK {
		t.Fatalf("refresh from the cookie: status %d %v", r.status, r.body)
	}
	if _, ok := r.body["refresh_token"]; ok {
		t.Errorf("a cookie refresh's answer holds the refresh token: %v", r.body)
	}
	access, _ := r.body["access_token"].(string)
	second := r.cookie
	if access == "" || second == nil || second.Value == first.Value || !second.HttpOnly || second.SameSite != http.SameSiteStrictMode {
		t.Fatalf("refresh from the cookie: access %q, cookie %v; want a new access token and a new strict cookie", access, second)
	}

	// The access token of the refresh signs out, and the answer deletes the cookie; the
	// session ends, so the last cookie no longer refreshes.
	r = a.browserCall("POST", "/api/v1/auth/logout", a.url, "", access, "")
	if r.status != http.StatusNoContent {
		t.Fatalf("logout: status %d, want 204", r.status)
	}
	if gone := r.cookie; gone == nil || gone.MaxAge >= 0 || gone.Path != "/api/v1/auth/refresh" {
		t.Errorf("logout's cookie = %v, want the refresh cookie deleted", gone)
	}
	if r = a.browserCall("POST", "/api/v1/auth/refresh", a.url, second.Value, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("refresh after logout: status %d, want 401", r.status)
	}

	// The CLI's way: the refresh token in the body, both ways.
	r = a.browserCall("POST", "/api/v1/auth/login", "", "", "", login)
	rt, _ := r.body["refresh_token"].(string)
	if r.status != http.StatusOK || rt == "" {
		t.Fatalf("login without Origin: status %d, refresh token %q; want it in the body", r.status, rt)
	}
	r = a.browserCall("POST", "/api/v1/auth/refresh", "", "", "", `{"refresh_token":"`+rt+`"}`)
	if next, _ := r.body["refresh_token"].(string); r.status != http.StatusOK || next == "" || next == rt {
		t.Errorf("refresh with the body: status %d, refresh token %q; want a new one in the body", r.status, next)
	}
}

// TestRefreshCookieSecureOverTLS: behind a TLS proxy, or with an https public URL, the
// cookie is Secure.
func TestRefreshCookieSecureOverTLS(t *testing.T) {
	for _, tt := range []struct {
		name      string
		publicURL string
		proto     string
	}{
		{"forwarded https", "", "https"},
		{"https public URL", "https://fabu.example.com", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := storetest.Open(t, "sqlite")
			addUser(t, db, "u1", "alice", RoleUser, alicePassword)
			a := serve(t, newService(t, db, nil, func(c *Config) { c.OAuth.PublicURL = tt.publicURL }))
			req, _ := http.NewRequest("POST", a.url+"/api/v1/auth/login",
				strings.NewReader(`{"username":"alice","password":"`+alicePassword+`"}`))
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if c := refreshCookieOf(resp); c == nil || !c.Secure {
				t.Errorf("cookie = %v, want Secure", c)
			}
		})
	}
}
