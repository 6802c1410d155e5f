package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/services/auth/oauthtest"
)

var (
	glAlice = oauthtest.User{Subject: "4711", Login: "alice", Name: "Alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"platform", "platform/web"}}
	ghAlice = oauthtest.User{Subject: "583231", Login: "octo-alice", Name: "Alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"Fabu-Org"}, OtherEmails: []string{"alice@old.example.org"}}
)

// TestOAuthLinkAndSignIn is the happy path through both providers: a signed-in user links
// their GitLab and GitHub accounts from the Account page, then signs in with each; the
// tokens work, the redirect is kept, and no token appears in any URL.
func TestOAuthLinkAndSignIn(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newOAuthEnv(t, driver)
			addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
			e.gl.SetUser(glAlice)
			e.gh.SetUser(ghAlice)

			var providers []ProviderView
			if st, _ := e.a.call("GET", "/api/v1/auth/providers", "", nil, &providers); st != http.StatusOK || len(providers) != 2 ||
				providers[0] != (ProviderView{Name: "gitlab", Label: "GitLab"}) || providers[1] != (ProviderView{Name: "github", Label: "GitHub"}) {
				t.Fatalf("providers = %d %+v", st, providers)
			}

			pw := e.a.login("alice", alicePassword)
			b := newBrowser(t)
			var tokens []string
			for _, p := range []string{ProviderGitLab, ProviderGitHub} {
				page, frag := e.link(b, p, pw.AccessToken)
				if page != "/account" || frag.Get("oauth_linked") != p {
					t.Fatalf("link %s ended at %s#%s", p, page, frag.Encode())
				}
			}
			if got := e.identities(); got["gitlab:4711"] != "u1" || got["github:583231"] != "u1" || len(got) != 2 {
				t.Fatalf("identities = %v, want both linked to u1", got)
			}
			var ids []IdentityView
			if st, _ := e.a.call("GET", "/api/v1/auth/identities", pw.AccessToken, nil, &ids); st != http.StatusOK || len(ids) != 2 ||
				ids[0].Provider != "github" || ids[0].Login != "octo-alice" || ids[0].Email != "alice@example.com" ||
				ids[1].Provider != "gitlab" || ids[1].Login != "alice" {
				t.Fatalf("identities = %d %+v", st, ids)
			}

			for _, p := range []string{ProviderGitLab, ProviderGitHub} {
				nb := newBrowser(t)
				cb := e.toProvider(nb, p, "/runs/42?tab=log")
				page, frag := e.callback(nb, cb)
				if page != "/login" || frag.Get("oauth_code") == "" {
					t.Fatalf("%s sign-in ended at %s#%s", p, page, frag.Encode())
				}
				st, out := e.exchange(nb, frag.Get("oauth_code"))
				if st != http.StatusOK || out.User.ID != "u1" || out.User.Username != "alice" || out.Redirect != "/runs/42?tab=log" {
					t.Fatalf("%s exchange = %d %+v", p, st, out)
				}
				if st, _ := e.a.call("GET", "/api/v1/auth/api-tokens", out.AccessToken, nil, nil); st != http.StatusOK {
					t.Errorf("%s: the access token does not authenticate: %d", p, st)
				}
				var refreshed Tokens
				if st, _ := e.a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": out.RefreshToken}, &refreshed); st != http.StatusOK {
					t.Errorf("%s: the refresh token does not refresh: %d", p, st)
				}
				// The code works once.
				if st, _ := e.exchange(nb, frag.Get("oauth_code")); st != http.StatusUnauthorized {
					t.Errorf("%s: second exchange of the code = %d, want 401", p, st)
				}
				tokens = append(tokens, out.AccessToken, out.RefreshToken, refreshed.AccessToken, refreshed.RefreshToken)
				for _, u := range nb.urls {
					if strings.Contains(u, "access_token") || strings.Contains(u, "refresh_token") {
						t.Errorf("a URL names a token: %s", u)
					}
				}
				assertNoTokensIn(t, nb.urls, tokens)
			}
			// The provider saw a PKCE challenge (S256) and, for OpenID, a nonce; never a verifier in a URL.
			for _, r := range append(e.gl.Requests(), e.gh.Requests()...) {
				if strings.HasPrefix(r, "/oauth/authorize") || strings.HasPrefix(r, "/login/oauth/authorize") {
					q, _ := url.ParseQuery(r[strings.IndexByte(r, '?')+1:])
					if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("code_verifier") != "" {
						t.Errorf("authorize request without S256 PKCE: %s", r)
					}
					if strings.HasPrefix(r, "/oauth/") && q.Get("nonce") == "" {
						t.Errorf("OpenID authorize request without a nonce: %s", r)
					}
				}
			}
			assertNoTokensIn(t, append(e.gl.Requests(), e.gh.Requests()...), tokens)

			var actions []string
			for _, a := range auditLog(t, e.db, "auth.oauth.") {
				actions = append(actions, a.Action+":"+a.Outcome)
			}
			want := "auth.oauth.link:ok auth.oauth.link:ok auth.oauth.login:ok auth.oauth.login:refused auth.oauth.login:ok auth.oauth.login:refused"
			if strings.Join(actions, " ") != want {
				t.Errorf("audit = %v\nwant %s", actions, want)
			}
			scanAudit(t, e.db, append(tokens, pw.AccessToken, pw.RefreshToken, glSecret, ghSecret)...)
			scanForSecrets(t, e.a, e.db)
		})
	}
}

func assertNoTokensIn(t *testing.T, urls, tokens []string) {
	t.Helper()
	for _, u := range urls {
		for _, tok := range tokens {
			if tok != "" && strings.Contains(u, tok) {
				t.Errorf("URL %s contains a token", u)
			}
		}
	}
}

// TestOAuthState: a callback needs this browser's cookie, its flow's state, once, in time.
func TestOAuthState(t *testing.T) {
	e := newOAuthEnv(t, store.SQLite)
	addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
	e.gl.SetUser(glAlice)
	pw := e.a.login("alice", alicePassword)
	if page, frag := e.link(newBrowser(t), ProviderGitLab, pw.AccessToken); frag.Get("oauth_linked") != "gitlab" {
		t.Fatalf("link: %s#%s", page, frag.Encode())
	}

	t.Run("bad state", func(t *testing.T) {
		b := newBrowser(t)
		cb := e.toProvider(b, ProviderGitLab, "/")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", q.Get("state")[:len(q.Get("state"))-1]+"x")
		u.RawQuery = q.Encode()
		if _, frag := e.callback(b, u.String()); frag.Get("oauth_error") != "state" {
			t.Errorf("forged state: %v, want oauth_error=state", frag)
		}
		// The flow is spent: the right state does not work after a wrong one.
		if _, frag := e.callback(b, cb); frag.Get("oauth_error") != "expired" {
			t.Errorf("the right state after a wrong one: %v, want expired", frag)
		}
	})
	t.Run("replayed state", func(t *testing.T) {
		b := newBrowser(t)
		cb := e.toProvider(b, ProviderGitLab, "/")
		_, frag := e.callback(b, cb)
		if frag.Get("oauth_code") == "" {
			t.Fatalf("first callback: %v", frag)
		}
		if _, frag := e.callback(b, cb); frag.Get("oauth_error") == "" || frag.Get("oauth_code") != "" {
			t.Errorf("replayed callback: %v, want refused", frag)
		}
	})
	t.Run("missing cookie", func(t *testing.T) {
		cb := e.toProvider(newBrowser(t), ProviderGitLab, "/")
		// Another browser (an attacker's, or the cookie is gone) brings the callback.
		if _, frag := e.callback(newBrowser(t), cb); frag.Get("oauth_error") != "expired" {
			t.Errorf("callback without the cookie: %v, want expired", frag)
		}
	})
	t.Run("expired flow", func(t *testing.T) {
		b := newBrowser(t)
		cb := e.toProvider(b, ProviderGitLab, "/")
		e.clk.Advance(11 * time.Minute)
		if _, frag := e.callback(b, cb); frag.Get("oauth_error") != "expired" {
			t.Errorf("callback after 11 minutes: %v, want expired", frag)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		b := newBrowser(t)
		_, frag := e.callback(b, e.toProvider(b, ProviderGitLab, "/"))
		e.clk.Advance(2 * time.Minute)
		if st, _ := e.exchange(b, frag.Get("oauth_code")); st != http.StatusUnauthorized {
			t.Errorf("exchange after 2 minutes = %d, want 401", st)
		}
	})
	t.Run("code without its cookie", func(t *testing.T) {
		b := newBrowser(t)
		_, frag := e.callback(b, e.toProvider(b, ProviderGitLab, "/"))
		if st, _ := e.exchange(newBrowser(t), frag.Get("oauth_code")); st != http.StatusUnauthorized {
			t.Errorf("exchange in another browser = %d, want 401", st)
		}
		// Nor does a wrong code work in the right browser, and it spends nothing.
		if st, _ := e.exchange(b, "wrong-code"); st != http.StatusUnauthorized {
			t.Errorf("wrong code = %d, want 401", st)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if st, _ := e.a.call("GET", "/api/v1/auth/oauth/bitbucket/start", "", nil, nil); st != http.StatusNotFound {
			t.Errorf("unknown provider = %d, want 404", st)
		}
		if st, _ := e.a.call("POST", "/api/v1/auth/oauth/exchange", "", `{"code": 1}`, nil); st != http.StatusBadRequest {
			t.Errorf("malformed exchange = %d, want 400", st)
		}
		b := newBrowser(t)
		_, loc := b.get(e.a.url + "/api/v1/auth/oauth/gitlab/start?redirect=" + url.QueryEscape("//evil.example/x"))
		e.authorize(b, loc)
		var f oauthFlow
		if err := e.db.Order("created_at DESC, id DESC").Take(&f).Error; err != nil || f.Redirect != "/projects" {
			t.Errorf("redirect to another site stored as %q (%v), want /projects", f.Redirect, err)
		}
	})
	t.Run("denied at the provider", func(t *testing.T) {
		b := newBrowser(t)
		cb := e.toProvider(b, ProviderGitLab, "/")
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		u.RawQuery = q.Encode()
		if _, frag := e.callback(b, u.String()); frag.Get("oauth_error") != "denied" {
			t.Errorf("denied: %v", frag)
		}
	})
}

// TestOAuthIDTokenChecks: an id_token is accepted only when its signature verifies with the
// provider's JWKS and its issuer, audience, expiry and nonce are this sign-in's.
func TestOAuthIDTokenChecks(t *testing.T) {
	e := newOAuthEnv(t, store.SQLite)
	addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
	e.gl.SetUser(glAlice)
	pw := e.a.login("alice", alicePassword)
	if _, frag := e.link(newBrowser(t), ProviderGitLab, pw.AccessToken); frag.Get("oauth_linked") != "gitlab" {
		t.Fatalf("link: %v", frag)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(c map[string]any) string
		ok     bool
	}{
		{"untouched RS256", func(c map[string]any) string { return e.gl.Sign(c) }, true},
		{"ES256 from the JWKS", func(c map[string]any) string { return e.gl.SignES256(c) }, true},
		{"wrong audience", func(c map[string]any) string { c["aud"] = "another-app"; return e.gl.Sign(c) }, false},
		{"wrong issuer", func(c map[string]any) string { c["iss"] = "https://gitlab.evil.example"; return e.gl.Sign(c) }, false},
		{"wrong nonce", func(c map[string]any) string { c["nonce"] = "replayed-nonce"; return e.gl.Sign(c) }, false},
		{"no nonce", func(c map[string]any) string { delete(c, "nonce"); return e.gl.Sign(c) }, false},
		{"expired", func(c map[string]any) string {
			c["exp"] = e.clk.Now().Add(-time.Minute).Unix()
			return e.gl.Sign(c)
		}, false},
		{"signed by another key", func(c map[string]any) string { return oauthtest.SignWith(otherKey, "gitlab-rsa-1", c) }, false},
		{"alg none", oauthtest.None, false},
		{"payload changed after signing", func(c map[string]any) string {
			good := strings.Split(e.gl.Sign(c), ".")
			c["sub"] = "1"
			forged := strings.Split(oauthtest.None(c), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}, false},
		{"garbage", func(map[string]any) string { return "not.a.jwt" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.gl.Tamper = tc.tamper
			defer func() { e.gl.Tamper = nil }()
			b := newBrowser(t)
			_, frag := e.callback(b, e.toProvider(b, ProviderGitLab, "/"))
			if tc.ok {
				if frag.Get("oauth_code") == "" {
					t.Fatalf("refused: %v", frag)
				}
				if st, out := e.exchange(b, frag.Get("oauth_code")); st != http.StatusOK || out.User.ID != "u1" {
					t.Errorf("exchange = %d %+v", st, out.User)
				}
				return
			}
			if frag.Get("oauth_error") != "provider" || frag.Get("oauth_code") != "" {
				t.Errorf("accepted or wrong error: %v, want oauth_error=provider", frag)
			}
		})
	}
	refused := 0
	for _, a := range auditLog(t, e.db, "auth.oauth.login") {
		if a.Outcome == audit.Refused && a.Detail["provider"] == "gitlab" {
			refused++
		}
	}
	if refused != len(cases)-2 {
		t.Errorf("%d refused sign-ins audited, want %d", refused, len(cases)-2)
	}
}

// TestOAuthPKCE: a code stolen from one browser's redirect and brought to fabu in another
// browser's flow (code injection) is refused by the provider, because that flow's verifier
// does not match the challenge the code was issued for.
func TestOAuthPKCE(t *testing.T) {
	for _, p := range []string{ProviderGitLab, ProviderGitHub} {
		t.Run(p, func(t *testing.T) {
			e := newOAuthEnv(t, store.SQLite)
			addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
			e.gl.SetUser(glAlice)
			e.gh.SetUser(ghAlice)
			pw := e.a.login("alice", alicePassword)
			if _, frag := e.link(newBrowser(t), p, pw.AccessToken); frag.Get("oauth_linked") != p {
				t.Fatalf("link: %v", frag)
			}
			victim, attacker := newBrowser(t), newBrowser(t)
			stolen, _ := url.Parse(e.toProvider(victim, p, "/"))
			own, _ := url.Parse(e.toProvider(attacker, p, "/"))
			q := own.Query()
			q.Set("code", stolen.Query().Get("code"))
			own.RawQuery = q.Encode()
			if _, frag := e.callback(attacker, own.String()); frag.Get("oauth_error") != "provider" {
				t.Errorf("injected code: %v, want oauth_error=provider", frag)
			}
		})
	}
}

// TestOAuthProvisioning: an unknown identity is refused, or creates a new user (system role
// user, no project roles) when the provider auto-creates, within the allowed domains and
// groups; it is never linked to an existing user with the same name or email.
func TestOAuthProvisioning(t *testing.T) {
	t.Run("refused without auto-create", func(t *testing.T) {
		e := newOAuthEnv(t, store.SQLite)
		addUser(t, e.db, "u1", "alice", RoleAdmin, alicePassword) // same name as the GitLab login
		e.gl.SetUser(glAlice)
		if code := e.signInError(newBrowser(t), ProviderGitLab); code != "unknown_identity" {
			t.Errorf("unknown identity: %s, want unknown_identity", code)
		}
		if n := e.userCount(); n != 1 || len(e.identities()) != 0 {
			t.Errorf("users %d, identities %v: want nothing created or linked", n, e.identities())
		}
		got := auditLog(t, e.db, "auth.oauth.login")
		if len(got) != 1 || got[0].Outcome != audit.Refused || got[0].TargetID != "gitlab:4711" || got[0].Detail["login"] != "alice" {
			t.Errorf("audit = %+v", got)
		}
	})
	t.Run("auto-create with a domain limit", func(t *testing.T) {
		e := newOAuthEnv(t, store.SQLite, func(c *Config) {
			c.OAuth.Providers[0].AutoCreate = true
			c.OAuth.Providers[0].AllowedDomains = []string{"Example.com"}
		})
		addUser(t, e.db, "u1", "alice", RoleAdmin, alicePassword)
		e.gl.SetUser(glAlice)
		out := e.signIn(newBrowser(t), ProviderGitLab)
		// Not the existing admin alice: a new user, named after the provider login.
		if out.User.ID == "u1" || out.User.Username != "alice-gitlab" || out.User.Role != RoleUser {
			t.Fatalf("signed in as %+v, want a new user alice-gitlab with role user", out.User)
		}
		var members int64
		if err := e.db.Raw("SELECT COUNT(*) FROM project_group_members WHERE user_id = ?", out.User.ID).Scan(&members).Error; err != nil || members != 0 {
			t.Errorf("project roles of the new user: %d (%v), want none", members, err)
		}
		if got := e.identities(); got["gitlab:4711"] != out.User.ID {
			t.Errorf("identities = %v", got)
		}
		// The second sign-in finds the same user.
		if again := e.signIn(newBrowser(t), ProviderGitLab); again.User.ID != out.User.ID || e.userCount() != 2 {
			t.Errorf("second sign-in as %+v with %d users, want the same user", again.User, e.userCount())
		}
		// The new user has no password: no password signs in, after the same work.
		calls := 0
		check := e.s.checkPassword
		e.s.checkPassword = func(h, p string) error { calls++; return check(h, p) }
		if _, err := e.s.Login(context.Background(), "alice-gitlab", noPassword); err == nil || calls != 1 {
			t.Errorf("password login of a provider user = %v after %d checks, want refused after 1", err, calls)
		}
		if e.signInOther(t, oauthtest.User{Subject: "99", Login: "mallory", Email: "mallory@evil.example", EmailVerified: true}) != "not_allowed" {
			t.Error("an email outside the allowed domains was not refused")
		}
		if e.signInOther(t, oauthtest.User{Subject: "98", Login: "eve", Email: "eve@example.com", EmailVerified: false}) != "not_allowed" {
			t.Error("an unverified email was not refused")
		}
		pr := auditLog(t, e.db, "auth.oauth.provision")
		if len(pr) != 1 || pr[0].TargetID != out.User.ID || pr[0].Detail["username"] != "alice-gitlab" || pr[0].Detail["role"] != RoleUser {
			t.Errorf("provision audit = %+v", pr)
		}
	})
	t.Run("auto-create limited to GitLab groups", func(t *testing.T) {
		e := newOAuthEnv(t, store.SQLite, func(c *Config) {
			c.OAuth.Providers[0].AutoCreate = true
			c.OAuth.Providers[0].AllowedGroups = []string{"platform"}
		})
		e.gl.SetUser(oauthtest.User{Subject: "5", Login: "bob", Groups: []string{"platform/web"}})
		if out := e.signIn(newBrowser(t), ProviderGitLab); out.User.Username != "bob" {
			t.Errorf("member of a subgroup signed in as %+v", out.User)
		}
		e.gl.SetUser(oauthtest.User{Subject: "6", Login: "carol", Groups: []string{"platformer", "other"}})
		if code := e.signInError(newBrowser(t), ProviderGitLab); code != "not_allowed" {
			t.Errorf("outsider: %s, want not_allowed", code)
		}
	})
	t.Run("auto-create limited to GitHub organizations", func(t *testing.T) {
		e := newOAuthEnv(t, store.SQLite, func(c *Config) {
			c.OAuth.Providers[1].AutoCreate = true
			c.OAuth.Providers[1].AllowedGroups = []string{"fabu-org"}
		})
		e.gh.SetUser(ghAlice)
		if out := e.signIn(newBrowser(t), ProviderGitHub); out.User.Username != "octo-alice" || out.User.Role != RoleUser {
			t.Errorf("org member signed in as %+v", out.User)
		}
		var idt userIdentity
		if err := e.db.Where("provider = 'github'").Take(&idt).Error; err != nil || idt.Email != "alice@example.com" {
			t.Errorf("identity %+v (%v), want the verified primary email", idt, err)
		}
		e.gh.SetUser(oauthtest.User{Subject: "7", Login: "outsider", Email: "o@example.com", EmailVerified: true, Groups: []string{"other"}})
		if code := e.signInError(newBrowser(t), ProviderGitHub); code != "not_allowed" {
			t.Errorf("non-member: %s, want not_allowed", code)
		}
		for _, r := range e.gh.Requests() {
			if strings.HasPrefix(r, "/login/oauth/authorize") && !strings.Contains(r, "read%3Aorg") {
				t.Errorf("authorize without read:org although organizations are checked: %s", r)
			}
		}
	})
}

// signInOther signs in as u at GitLab and returns the error shown.
func (e *oauthEnv) signInOther(t *testing.T, u oauthtest.User) string {
	t.Helper()
	e.gl.SetUser(u)
	return e.signInError(newBrowser(t), ProviderGitLab)
}

// TestOAuthRefusals: disabled and locked users, linking someone else's identity, unlinking.
func TestOAuthRefusals(t *testing.T) {
	e := newOAuthEnv(t, store.SQLite)
	addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
	addUser(t, e.db, "u2", "bob", RoleUser, alicePassword)
	e.gl.SetUser(glAlice)
	e.gh.SetUser(ghAlice)
	alice := e.a.login("alice", alicePassword)
	bob := e.a.login("bob", alicePassword)
	if _, frag := e.link(newBrowser(t), ProviderGitLab, alice.AccessToken); frag.Get("oauth_linked") != "gitlab" {
		t.Fatalf("link: %v", frag)
	}

	t.Run("identity of another user", func(t *testing.T) {
		if _, frag := e.link(newBrowser(t), ProviderGitLab, bob.AccessToken); frag.Get("oauth_error") != "taken" {
			t.Errorf("bob linking alice's GitLab account: %v, want taken", frag)
		}
		if e.identities()["gitlab:4711"] != "u1" {
			t.Error("the identity moved")
		}
	})
	t.Run("link needs a live login", func(t *testing.T) {
		b := newBrowser(t)
		st, _, body := b.do(http.MethodPost, e.a.url+"/api/v1/auth/oauth/github/link", bob.AccessToken, nil)
		if st != http.StatusOK {
			t.Fatalf("link start: %d %s", st, body)
		}
		if st, _ := e.a.call("POST", "/api/v1/auth/logout", bob.AccessToken, nil, nil); st != http.StatusNoContent {
			t.Fatalf("logout: %d", st)
		}
		var ls LinkStart
		if err := json.Unmarshal(body, &ls); err != nil {
			t.Fatal(err)
		}
		if _, frag := e.callback(b, e.authorize(b, ls.URL)); frag.Get("oauth_error") != "expired" {
			t.Errorf("link after logout: %v, want expired", frag)
		}
		bob = e.a.login("bob", alicePassword)
	})
	t.Run("disabled user", func(t *testing.T) {
		if err := e.db.Exec("UPDATE users SET disabled_at = ? WHERE id = 'u1'", time.Now().UTC()).Error; err != nil {
			t.Fatal(err)
		}
		if code := e.signInError(newBrowser(t), ProviderGitLab); code != "disabled" {
			t.Errorf("disabled: %s", code)
		}
		if err := e.db.Exec("UPDATE users SET disabled_at = NULL WHERE id = 'u1'").Error; err != nil {
			t.Fatal(err)
		}
		// Disabled between the callback and the exchange.
		b := newBrowser(t)
		_, frag := e.callback(b, e.toProvider(b, ProviderGitLab, "/"))
		if err := e.db.Exec("UPDATE users SET disabled_at = ? WHERE id = 'u1'", time.Now().UTC()).Error; err != nil {
			t.Fatal(err)
		}
		if st, _ := e.exchange(b, frag.Get("oauth_code")); st != http.StatusUnauthorized {
			t.Errorf("exchange of a disabled user = %d, want 401", st)
		}
		if err := e.db.Exec("UPDATE users SET disabled_at = NULL WHERE id = 'u1'").Error; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("locked user", func(t *testing.T) {
		for i := range 5 {
			e.a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "wrong password " + string(rune('a'+i))}, nil)
		}
		if code := e.signInError(newBrowser(t), ProviderGitLab); code != "locked" {
			t.Errorf("locked: %s", code)
		}
		e.clk.Advance(16 * time.Minute)
		e.signIn(newBrowser(t), ProviderGitLab)
	})
	t.Run("unlink", func(t *testing.T) {
		alice = e.a.login("alice", alicePassword)
		if st, _ := e.a.call("DELETE", "/api/v1/auth/identities/github", alice.AccessToken, nil, nil); st != http.StatusNotFound {
			t.Errorf("unlink of an unlinked provider = %d, want 404", st)
		}
		var tok CreatedAPIToken
		if st, _ := e.a.call("POST", "/api/v1/auth/api-tokens", alice.AccessToken, map[string]any{"name": "ci", "scopes": []string{"read"}}, &tok); st != http.StatusCreated {
			t.Fatalf("API token: %d", st)
		}
		if st, _ := e.a.call("DELETE", "/api/v1/auth/identities/gitlab", tok.Token, nil, nil); st != http.StatusForbidden {
			t.Errorf("unlink with an API token = %d, want 403", st)
		}
		if st, _ := e.a.call("DELETE", "/api/v1/auth/identities/gitlab", alice.AccessToken, nil, nil); st != http.StatusNoContent {
			t.Fatalf("unlink = %d", st)
		}
		if code := e.signInError(newBrowser(t), ProviderGitLab); code != "unknown_identity" {
			t.Errorf("sign-in after unlink: %s, want unknown_identity", code)
		}
		un := auditLog(t, e.db, "auth.oauth.unlink")
		if len(un) != 2 || un[0].Outcome != audit.Refused || un[1].Outcome != audit.OK || un[1].TargetID != "gitlab:4711" || un[1].Actor != "alice" {
			t.Errorf("unlink audit = %+v", un)
		}
	})
}

// TestOAuthUnlinkLastWay: a user created by a provider has no password; their last identity
// cannot be unlinked.
func TestOAuthUnlinkLastWay(t *testing.T) {
	e := newOAuthEnv(t, store.SQLite, func(c *Config) { c.OAuth.Providers[1].AutoCreate = true })
	e.gh.SetUser(ghAlice)
	out := e.signIn(newBrowser(t), ProviderGitHub)
	st, _ := e.a.call("DELETE", "/api/v1/auth/identities/github", out.AccessToken, nil, nil)
	if st != http.StatusConflict {
		t.Errorf("unlink of the only way in = %d, want 409", st)
	}
	// Having no password, they have none to change (and no failure counts towards a lockout).
	if st, _ := e.a.call("POST", "/api/v1/auth/password", out.AccessToken, map[string]string{"old": "guess-0123456789", "new": "a new long password"}, nil); st != http.StatusBadRequest {
		t.Errorf("password change of a passwordless user = %d, want 400", st)
	}
	var failures int64
	if err := e.db.Model(&loginFailures{}).Count(&failures).Error; err != nil || failures != 0 {
		t.Errorf("%d login failures (%v), want none", failures, err)
	}
	e.gl.SetUser(glAlice)
	if _, frag := e.link(newBrowser(t), ProviderGitLab, out.AccessToken); frag.Get("oauth_linked") != "gitlab" {
		t.Fatalf("link GitLab: %v", frag)
	}
	if st, _ := e.a.call("DELETE", "/api/v1/auth/identities/github", out.AccessToken, nil, nil); st != http.StatusNoContent {
		t.Errorf("unlink with another identity left = %d, want 204", st)
	}
}

// TestOAuthRateLimit: the callback spends the address's sign-in attempts like a password login.
func TestOAuthRateLimit(t *testing.T) {
	e := newOAuthEnv(t, store.SQLite, func(c *Config) { c.IPBurst = 3 })
	addUser(t, e.db, "u1", "alice", RoleUser, alicePassword)
	e.gl.SetUser(glAlice)
	b := newBrowser(t)
	cb := e.toProvider(b, ProviderGitLab, "/") // 1
	e.a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "x", "password": "y"}, nil)
	e.a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "x", "password": "y"}, nil) // 3
	if _, frag := e.callback(b, cb); frag.Get("oauth_error") != "rate_limited" {
		t.Errorf("callback over the limit: %v, want rate_limited", frag)
	}
	if st, _ := e.a.call("GET", "/api/v1/auth/oauth/gitlab/start", "", nil, nil); st != http.StatusTooManyRequests {
		t.Errorf("start over the limit = %d, want 429", st)
	}
}

func TestOAuthConfigValidate(t *testing.T) {
	good := func() OAuthConfig {
		return OAuthConfig{PublicURL: "https://fabu.example.com", Providers: []OAuthProvider{{Name: "gitlab", ClientID: "a", ClientSecret: "b"}}}
	}
	cases := []struct {
		name string
		mod  func(*OAuthConfig)
		ok   bool
	}{
		{"gitlab.com by default", func(*OAuthConfig) {}, true},
		{"none", func(c *OAuthConfig) { c.Providers = nil; c.PublicURL = "" }, true},
		{"no public URL", func(c *OAuthConfig) { c.PublicURL = "" }, false},
		{"unknown provider", func(c *OAuthConfig) { c.Providers[0].Name = "bitbucket" }, false},
		{"twice", func(c *OAuthConfig) { c.Providers = append(c.Providers, c.Providers[0]) }, false},
		{"no secret", func(c *OAuthConfig) { c.Providers[0].ClientSecret = "" }, false},
		{"bad base URL", func(c *OAuthConfig) { c.Providers[0].BaseURL = "ftp://gitlab.example.com" }, false},
		{"credentials in base URL", func(c *OAuthConfig) { c.Providers[0].BaseURL = "https://u:p@gitlab.example.com" }, false},
		{"domains without auto-create", func(c *OAuthConfig) { c.Providers[0].AllowedDomains = []string{"example.com"} }, false},
		{"domains with auto-create", func(c *OAuthConfig) {
			c.Providers[0].AutoCreate = true
			c.Providers[0].AllowedDomains = []string{"example.com"}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			err := c.validate()
			if (err == nil) != tc.ok {
				t.Fatalf("validate = %v, want ok %v", err, tc.ok)
			}
			if tc.name == "gitlab.com by default" && c.Providers[0].BaseURL != "https://gitlab.com" {
				t.Errorf("base URL = %q", c.Providers[0].BaseURL)
			}
		})
	}
}

func TestRedirectTarget(t *testing.T) {
	for in, want := range map[string]string{
		"": "/projects", "/runs/1?x=2": "/runs/1?x=2", "//evil.example": "/projects", "https://evil.example": "/projects",
		"/\\evil.example": "/projects", "/a\nb": "/projects", "projects": "/projects",
	} {
		if got := redirectTarget(in); got != want {
			t.Errorf("redirectTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedirectTarget: whatever a start URL asks to return to, the SPA is sent to a path of
// its own origin.
func FuzzRedirectTarget(f *testing.F) {
	for _, s := range []string{"", "/", "/runs/1?x=2#y", "//evil.example", "/\\evil", "https://evil.example", "/%2F%2Fevil", "/\t/evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := redirectTarget(in)
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") ||
			strings.ContainsAny(got, "\\\r\n\t") {
			t.Fatalf("redirectTarget(%q) = %q leaves the origin", in, got)
		}
	})
}
