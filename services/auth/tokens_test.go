package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Alg, Kid string }
	if err := json.Unmarshal(h, &hdr); err != nil || hdr.Alg != "EdDSA" {
		t.Fatalf("header %s: %v", h, err)
	}
	return hdr.Kid
}

func claimsOf(t *testing.T, tok string) authn.Claims {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c authn.Claims
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAccessTokenClaims(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	s := newService(t, db, clk)
	addUser(t, db, "u1", "alice", RoleAdmin, alicePassword)
	tok, err := s.Login(context.Background(), "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, tok.AccessToken)
	now := clk.Now().Unix()
	if c.Subject != "u1" || c.Name != "alice" || c.Role != RoleAdmin || c.Issuer != "fabu" ||
		len(c.Audience) != 1 || c.Audience[0] != "fabu-api" || c.IssuedAt != now || c.ExpiresAt != now+15*60 || c.ID == "" || c.SessionID == "" {
		t.Errorf("claims = %+v, want sub u1, name alice, role admin, iss fabu, aud fabu-api, 15 min, jti and sid", c)
	}
	if tok.ExpiresIn != 900 || tok.RefreshExpiresIn != 7*24*3600 || tok.TokenType != "Bearer" {
		t.Errorf("tokens = %+v, want 900 s access and 7 day refresh", tok)
	}
	if _, err := s.authn.Authenticate(context.Background(), tok.AccessToken); err != nil {
		t.Errorf("the issued access token does not authenticate: %v", err)
	}
	clk.Advance(16 * time.Minute)
	if _, err := s.authn.Authenticate(context.Background(), tok.AccessToken); !apperr.Is(err, apperr.CodeUnauthorized) {
		t.Errorf("access token after 16 min = %v, want unauthorized", err)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			s := newService(t, db, nil)
			addUser(t, db, "u1", "alice", RoleUser, alicePassword)
			a := serve(t, s)
			first := a.login("alice", alicePassword)

			var second Tokens
			if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}, &second); st != http.StatusOK {
				t.Fatalf("refresh: %d", st)
			}
			if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken || second.AccessToken == "" {
				t.Fatal("refresh did not rotate the tokens")
			}
			if claimsOf(t, second.AccessToken).SessionID != claimsOf(t, first.AccessToken).SessionID {
				t.Error("the refreshed access token belongs to another session")
			}
			if st, _ := a.call("GET", "/api/v1/auth/api-tokens", second.AccessToken, nil, nil); st != http.StatusOK {
				t.Fatalf("the refreshed access token: %d", st)
			}
			// The first refresh token was used: presenting it again revokes the session.
			if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}, nil); st != http.StatusUnauthorized {
				t.Fatalf("reused refresh token: %d, want 401", st)
			}
			if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken}, nil); st != http.StatusUnauthorized {
				t.Errorf("refresh token of a revoked session: %d, want 401", st)
			}
			for name, tok := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
				if st, _ := a.call("GET", "/api/v1/auth/api-tokens", tok, nil, nil); st != http.StatusUnauthorized {
					t.Errorf("%s access token of a revoked session: %d, want 401", name, st)
				}
			}
			// Another login is not affected.
			other := a.login("alice", alicePassword)
			if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": other.RefreshToken}, nil); st != http.StatusOK {
				t.Errorf("refresh of an unrelated session: %d", st)
			}
			for _, bad := range []string{"", "nonsense", strings.Repeat("x", 600)} {
				if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": bad}, nil); st != http.StatusUnauthorized {
					t.Errorf("refresh with %.10q: %d, want 401", bad, st)
				}
			}
			scanForSecrets(t, a, db)
		})
	}
}

func TestRefreshExpiry(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	s := newService(t, db, clk)
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	tok, err := s.Login(context.Background(), "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(7*24*time.Hour + time.Second)
	if _, err := s.Refresh(context.Background(), tok.RefreshToken); !apperr.Is(err, apperr.CodeUnauthorized) {
		t.Errorf("refresh after 7 days = %v, want unauthorized", err)
	}
}

func TestLogout(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	a := serve(t, s)
	tok := a.login("alice", alicePassword)
	other := a.login("alice", alicePassword)
	if st, _ := a.call("POST", "/api/v1/auth/logout", tok.AccessToken, nil, nil); st != http.StatusNoContent {
		t.Fatalf("logout: %d", st)
	}
	var n int64
	db.Table("auth_revoked_tokens").Where("jti = ?", claimsOf(t, tok.AccessToken).ID).Count(&n)
	if n != 1 {
		t.Errorf("the access token's jti is not on the revocation list")
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", tok.AccessToken, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("access token after logout: %d, want 401", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, nil); st != http.StatusUnauthorized {
		t.Errorf("refresh token after logout: %d, want 401", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", other.AccessToken, nil, nil); st != http.StatusOK {
		t.Errorf("another session after logout: %d, want 200", st)
	}
	// A refresh token alone signs out its session too.
	if st, _ := a.call("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": other.RefreshToken}, nil); st != http.StatusNoContent {
		t.Fatalf("logout by refresh token: %d", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", other.AccessToken, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("access token of a session signed out by refresh token: %d, want 401", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/logout", "", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("logout with nothing: %d, want 401", st)
	}
}

func TestSigningKeyRotation(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			clk := newClock()
			s := newService(t, db, clk)
			addUser(t, db, "u1", "alice", RoleUser, alicePassword)
			a := serve(t, s)
			ctx := context.Background()
			old, err := s.Login(ctx, "alice", alicePassword)
			if err != nil {
				t.Fatal(err)
			}
			oldKid := kidOf(t, old.AccessToken)
			newKid, err := s.RotateKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cur, err := s.Login(ctx, "alice", alicePassword)
			if err != nil {
				t.Fatal(err)
			}
			if got := kidOf(t, cur.AccessToken); got != newKid || got == oldKid {
				t.Fatalf("token after rotation signed by %s, want the new key %s", got, newKid)
			}
			for name, tok := range map[string]string{"old key": old.AccessToken, "new key": cur.AccessToken} {
				if _, err := s.authn.Authenticate(ctx, tok); err != nil {
					t.Errorf("token signed by the %s: %v", name, err)
				}
			}
			for _, path := range []string{"/.well-known/jwks.json", "/api/v1/auth/jwks.json"} {
				var set authn.JWKS
				if st, _ := a.call("GET", path, "", nil, &set); st != http.StatusOK {
					t.Fatalf("GET %s: %d", path, st)
				}
				if len(set.Keys) != 2 || set.Keys[0].KeyID != newKid || set.Keys[1].KeyID != oldKid {
					t.Errorf("%s lists %+v, want the new then the old key", path, set.Keys)
				}
				for _, k := range set.Keys {
					if _, err := k.PublicKey(); err != nil || k.Alg != "EdDSA" || k.Use != "sig" {
						t.Errorf("JWK %+v: %v", k, err)
					}
				}
			}
			// Once every token the old key signed has expired, it verifies nothing and
			// leaves the JWKS.
			clk.Advance(17 * time.Minute)
			var set authn.JWKS
			a.call("GET", "/.well-known/jwks.json", "", nil, &set)
			if len(set.Keys) != 1 || set.Keys[0].KeyID != newKid {
				t.Errorf("JWKS after the old key's tokens expired = %+v, want only %s", set.Keys, newKid)
			}
			if err := s.prune(ctx); err != nil {
				t.Fatal(err)
			}
			var n int64
			db.Table("auth_signing_keys").Count(&n)
			if n != 1 {
				t.Errorf("%d signing keys after pruning, want 1", n)
			}
			// After KeyRotation, signing rotates by itself.
			clk.Advance(31 * 24 * time.Hour)
			late, err := s.Login(ctx, "alice", alicePassword)
			if err != nil {
				t.Fatal(err)
			}
			if kidOf(t, late.AccessToken) == newKid {
				t.Error("a 31 day old key still signs")
			}
			// The private keys are sealed: the stored value does not hold the seed.
			var sealed []string
			db.Table("auth_signing_keys").Pluck("private_key_sealed", &sealed)
			for _, v := range sealed {
				if !strings.HasPrefix(v, "v2:") {
					t.Errorf("private key stored as %.12q…, want a sealed envelope", v)
				}
			}
			scanForSecrets(t, a, db)
		})
	}
}

func TestIPRateLimit(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	clk := newClock()
	s := newService(t, db, clk, func(c *Config) { c.IPBurst = 3; c.IPRefill = 10 * time.Second })
	a := serve(t, s)
	for i := 0; i < 3; i++ { // different users, so no user lockout applies
		if st, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "user" + string(rune('a'+i)), "password": "pw"}, nil); st != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, st)
		}
	}
	st, h := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "userz", "password": "pw"}, nil)
	if st != http.StatusTooManyRequests || h.Get("Retry-After") != "10" {
		t.Fatalf("4th attempt from one address: %d Retry-After %q, want 429 and 10", st, h.Get("Retry-After"))
	}
	clk.Advance(10 * time.Second)
	if st, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "usery", "password": "pw"}, nil); st != http.StatusUnauthorized {
		t.Errorf("after refill: %d, want 401", st)
	}
}

func TestUnknownUsersRunArgon2(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	var calls atomic.Int32
	s.checkPassword = func(hash, pw string) error { calls.Add(1); return CheckPassword(hash, pw) }
	for _, tt := range []struct{ name, user, pw string }{
		{"unknown user", "nobody", alicePassword},
		{"wrong password", "alice", "wrong password!"},
		{"right password", "alice", alicePassword},
	} {
		calls.Store(0)
		_, err := s.Login(context.Background(), tt.user, tt.pw)
		if got := calls.Load(); got != 1 {
			t.Errorf("%s: argon2id ran %d times, want 1", tt.name, got)
		}
		if tt.name != "right password" && (err == nil || err.Error() != "wrong username or password") {
			t.Errorf("%s: %v, want the one error", tt.name, err)
		}
	}
}

func TestAPITokens(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			s := newService(t, db, nil)
			addUser(t, db, "u1", "alice", RoleAdmin, alicePassword)
			addUser(t, db, "u2", "bob", RoleUser, "bob's long password")
			a := serve(t, s)
			alice := a.login("alice", alicePassword)
			bob := a.login("bob", "bob's long password")

			var made CreatedAPIToken
			st, _ := a.call("POST", "/api/v1/auth/api-tokens", alice.AccessToken,
				map[string]any{"name": "ci", "scopes": []string{"read", "deploy"}, "expires_in_days": 10}, &made)
			if st != http.StatusCreated || !strings.HasPrefix(made.Token, "fabu_") || made.Name != "ci" ||
				strings.Join(made.Scopes, ",") != "read,deploy" || made.ExpiresAt.Sub(made.CreatedAt) != 10*24*time.Hour {
				t.Fatalf("create: %d %+v", st, made)
			}
			var stored string
			db.Table("auth_tokens").Where("id = ?", made.ID).Pluck("token_hash", &stored)
			if stored != HashToken(made.Token) {
				t.Errorf("stored %q, want the token's SHA-256", stored)
			}
			p, err := s.authn.Authenticate(context.Background(), made.Token)
			if err != nil || p.UserID != "u1" || p.Kind != authn.KindAPIToken || !p.Allows("deploy") || p.Allows("write") {
				t.Errorf("Authenticate(API token) = %+v, %v", p, err)
			}
			var list []map[string]any
			if st, _ := a.call("GET", "/api/v1/auth/api-tokens", alice.AccessToken, nil, &list); st != http.StatusOK || len(list) != 1 {
				t.Fatalf("list: %d %v", st, list)
			}
			for k := range list[0] {
				if k == "token" || k == "token_hash" {
					t.Errorf("the list shows %s", k)
				}
			}
			// The read+deploy token cannot make a token with more power.
			if st, _ := a.call("POST", "/api/v1/auth/api-tokens", made.Token, map[string]any{"name": "x", "scopes": []string{"write"}}, nil); st != http.StatusForbidden {
				t.Errorf("deploy token making a write token: %d, want 403", st)
			}
			for name, body := range map[string]map[string]any{
				"bob wants admin": {"name": "x", "scopes": []string{"admin"}},
			} {
				if st, _ := a.call("POST", "/api/v1/auth/api-tokens", bob.AccessToken, body, nil); st != http.StatusForbidden {
					t.Errorf("%s: %d, want 403", name, st)
				}
			}
			for name, body := range map[string]any{
				"no scopes":     map[string]any{"name": "x", "scopes": []string{}},
				"unknown scope": map[string]any{"name": "x", "scopes": []string{"root"}},
				"no name":       map[string]any{"name": " ", "scopes": []string{"read"}},
				"too long":      map[string]any{"name": "x", "scopes": []string{"read"}, "expires_in_days": 400},
				"negative":      map[string]any{"name": "x", "scopes": []string{"read"}, "expires_in_days": -1},
				"user_id":       map[string]any{"name": "x", "scopes": []string{"read"}, "user_id": "u2"},
			} {
				if st, _ := a.call("POST", "/api/v1/auth/api-tokens", alice.AccessToken, body, nil); st != http.StatusBadRequest {
					t.Errorf("%s: %d, want 400", name, st)
				}
			}
			if st, _ := a.call("POST", "/api/v1/auth/api-tokens", "", map[string]any{"name": "x", "scopes": []string{"read"}}, nil); st != http.StatusUnauthorized {
				t.Errorf("without a token: %d, want 401", st)
			}
			// Bob cannot revoke Alice's token; Alice can.
			if st, _ := a.call("DELETE", "/api/v1/auth/api-tokens/"+made.ID, bob.AccessToken, nil, nil); st != http.StatusNotFound {
				t.Errorf("bob revoking alice's token: %d, want 404", st)
			}
			if st, _ := a.call("DELETE", "/api/v1/auth/api-tokens/"+made.ID, alice.AccessToken, nil, nil); st != http.StatusNoContent {
				t.Errorf("revoke: %d, want 204", st)
			}
			if _, err := s.authn.Authenticate(context.Background(), made.Token); !apperr.Is(err, apperr.CodeUnauthorized) {
				t.Errorf("revoked API token: %v, want unauthorized", err)
			}
			scanForSecrets(t, a, db)
		})
	}
}

func TestChangePassword(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	a := serve(t, s)
	mine := a.login("alice", alicePassword)
	other := a.login("alice", alicePassword)
	const newPassword = "a brand new passphrase"
	for name, body := range map[string]map[string]string{
		"wrong old":  {"old": "not my password", "new": newPassword},
		"empty new":  {"old": alicePassword, "new": ""},
		"weak new":   {"old": alicePassword, "new": "short"},
		"blank new":  {"old": alicePassword, "new": "              "},
		"same again": {"old": alicePassword, "new": alicePassword},
		"empty old":  {"old": "", "new": newPassword},
	} {
		if st, _ := a.call("POST", "/api/v1/auth/password", mine.AccessToken, body, nil); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, st)
		}
	}
	if st, _ := a.call("POST", "/api/v1/auth/password", mine.AccessToken, `{"old":"x","new":"y","role":"admin"}`, nil); st != http.StatusBadRequest {
		t.Errorf("with a role field: %d, want 400", st)
	}
	var api CreatedAPIToken
	a.call("POST", "/api/v1/auth/api-tokens", mine.AccessToken, map[string]any{"name": "cli", "scopes": []string{"write"}}, &api)
	if st, _ := a.call("POST", "/api/v1/auth/password", api.Token, map[string]string{"old": alicePassword, "new": newPassword}, nil); st != http.StatusForbidden {
		t.Errorf("password change with an API token: %d, want 403", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/password", mine.AccessToken, map[string]string{"old": alicePassword, "new": newPassword}, nil); st != http.StatusNoContent {
		t.Fatalf("change: %d", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", other.AccessToken, nil, nil); st != http.StatusUnauthorized {
		t.Errorf("the other session's access token: %d, want 401", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": other.RefreshToken}, nil); st != http.StatusUnauthorized {
		t.Errorf("the other session's refresh token: %d, want 401", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", mine.AccessToken, nil, nil); st != http.StatusOK {
		t.Errorf("my own session: %d, want 200", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": alicePassword}, nil); st != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d, want 401", st)
	}
	a.login("alice", newPassword)
	scanForSecrets(t, a, db)
}

// scanForSecrets fails if any answer the API gave holds a stored secret: a refresh or API
// token hash, a sealed or opened private signing key, or a password hash.
func scanForSecrets(t *testing.T, a *api, db *store.DB) {
	t.Helper()
	var secrets []string
	for _, q := range []string{
		"SELECT token_hash FROM auth_refresh_tokens",
		"SELECT token_hash FROM auth_tokens",
		"SELECT private_key_sealed FROM auth_signing_keys",
		"SELECT password_hash FROM users",
	} {
		var vs []string
		if err := db.Raw(q).Scan(&vs).Error; err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, vs...)
	}
	var keys []authn.SigningKey
	db.Find(&keys)
	ring := testKeyring(t)
	for _, k := range keys {
		seed, err := ring.Open(k.PrivateKeySealed, KeyPlace(k.KID))
		if err != nil {
			t.Fatal(err)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		for _, b := range [][]byte{seed, priv} {
			secrets = append(secrets, base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b))
		}
	}
	if len(secrets) == 0 || len(a.answers) == 0 {
		t.Fatal("nothing to scan")
	}
	for _, ans := range a.answers {
		for _, sec := range secrets {
			if sec != "" && strings.Contains(ans, sec) {
				t.Errorf("an answer holds a stored secret %.16q…: %.200s", sec, ans)
			}
		}
	}
}

// TestDisabledUserCannotSignIn: a user an administrator disabled gets the answer of a wrong
// password at login, and their refresh token stops working.
func TestDisabledUserCannotSignIn(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleUser, alicePassword)
	a := serve(t, s)
	tok := a.login("alice", alicePassword)
	if err := db.Exec(`UPDATE users SET disabled_at = ? WHERE id = 'u1'`, time.Now().UTC()).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(context.Background(), "alice", alicePassword); !errors.Is(err, errBadLogin) {
		t.Errorf("login of a disabled user = %v, want the wrong-password error", err)
	}
	if st, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": alicePassword}, nil); st != http.StatusUnauthorized {
		t.Errorf("login of a disabled user = %d, want 401", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok.RefreshToken}, nil); st != http.StatusUnauthorized {
		t.Errorf("refresh of a disabled user = %d, want 401", st)
	}
}
