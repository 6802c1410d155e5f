package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"fabu.dev/libs/authn"
	"fabu.dev/libs/store"
)

// asBearer sends a request with Authorization: Bearer tok (when not empty) and returns
// the status.
func (e *env) asBearer(tok, method, path string, body any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, jsonBody(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAccessTokensAndAPITokenScopes(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			now := time.Now().UTC()
			// A signing key as the auth service stores it; verifiers need only the public half.
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			if err := e.db.Create(&authn.SigningKey{KID: "k1", PublicKey: authn.NewJWK("k1", pub).X, PrivateKeySealed: "v1:sealed", CreatedAt: now}).Error; err != nil {
				t.Fatal(err)
			}
			if err := e.db.Exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u2', 'bob', 'x', 'user', ?)`, now).Error; err != nil {
				t.Fatal(err)
			}
			if err := e.db.Exec(`INSERT INTO auth_sessions (id, user_id, created_at, expires_at) VALUES ('s1', 'u2', ?, ?), ('s2', 'u2', ?, ?)`,
				now, now.Add(time.Hour), now, now.Add(time.Hour)).Error; err != nil {
				t.Fatal(err)
			}
			jwt := func(jti, sid string) string {
				tok, err := authn.Sign(priv, "k1", authn.Claims{Issuer: authn.Issuer, Audience: authn.Audiences{authn.Audience},
					Subject: "u2", Name: "bob", Role: "user", IssuedAt: now.Unix(), ExpiresAt: now.Add(15 * time.Minute).Unix(), ID: jti, SessionID: sid})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			apiToken := func(raw, scopes string) string {
				if err := e.db.Exec(`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at, name, scopes) VALUES (?, 'u2', ?, ?, ?, ?, ?)`,
					"t-"+scopes, authn.HashToken(raw), now.Add(time.Hour), now, scopes, scopes).Error; err != nil {
					t.Fatal(err)
				}
				return raw
			}
			read := apiToken("fabu_read-token-0123456789", "read")
			deploy := apiToken("fabu_deploy-token-012345678", "deploy")
			admin := apiToken("fabu_admin-token-0123456789", "admin") // bob is no admin: capped to read, deploy, write

			var sv ServerBody
			if st := e.call("POST", "/api/v1/servers", server("web-1"), &sv); st != http.StatusCreated {
				t.Fatalf("create server: %d", st)
			}
			var p ProjectBody
			if st := e.call("POST", "/api/v1/projects", map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git",
				"type": "static", "source_dir": "dist", "branch": "main", "deploy_path": "/srv/shop", "server_ids": []string{sv.ID}}, &p); st != http.StatusCreated {
				t.Fatalf("create project: %d", st)
			}
			if err := e.db.Exec(`INSERT INTO auth_revoked_tokens (jti, expires_at, created_at) VALUES ('revoked-jti', ?, ?)`, now.Add(time.Hour), now).Error; err != nil {
				t.Fatal(err)
			}
			if err := e.db.Exec(`UPDATE auth_sessions SET revoked_at = ? WHERE id = 's2'`, now).Error; err != nil {
				t.Fatal(err)
			}
			// Servers are for administrators; bob maintains the default project group, so he
			// may create projects there and deploy them.
			if err := e.db.Exec(`INSERT INTO project_group_members (id, project_group_id, user_id, role) VALUES ('m1', 'default', 'u2', 'maintainer')`).Error; err != nil {
				t.Fatal(err)
			}
			newProject := func(name string) map[string]any {
				return map[string]any{"name": name, "git_url": "https://gitlab.example.com/web/shop.git",
					"type": "static", "source_dir": "dist", "branch": "main", "deploy_path": "/srv/" + name, "server_ids": []string{sv.ID}}
			}
			runs := "/api/v1/projects/" + p.ID + "/runs"
			for _, tt := range []struct {
				name, tok, method, path string
				body                    any
				want                    int
			}{
				{"access token reads", jwt("j1", "s1"), "GET", "/api/v1/me", nil, http.StatusOK},
				{"access token writes", jwt("j2", "s1"), "POST", "/api/v1/projects", newProject("shop-2"), http.StatusCreated},
				{"revoked jti", jwt("revoked-jti", "s1"), "GET", "/api/v1/me", nil, http.StatusUnauthorized},
				{"revoked session", jwt("j3", "s2"), "GET", "/api/v1/me", nil, http.StatusUnauthorized},
				{"tampered access token", jwt("j4", "s1") + "A", "GET", "/api/v1/me", nil, http.StatusUnauthorized},
				{"read token reads", read, "GET", "/api/v1/projects", nil, http.StatusOK},
				{"read token cannot create", read, "POST", "/api/v1/servers", server("web-3"), http.StatusForbidden},
				{"read token cannot deploy", read, "POST", runs, map[string]any{}, http.StatusForbidden},
				{"read token cannot delete", read, "DELETE", "/api/v1/servers/" + sv.ID, nil, http.StatusForbidden},
				{"deploy token reads runs", deploy, "GET", "/api/v1/runs", nil, http.StatusOK},
				{"deploy token cannot change servers", deploy, "PUT", "/api/v1/servers/" + sv.ID, server("web-1"), http.StatusForbidden},
				{"deploy token cannot apply", deploy, "POST", "/api/v1/apply", map[string]any{"servers": []any{}, "projects": []any{}}, http.StatusForbidden},
				{"deploy token deploys", deploy, "POST", runs, map[string]any{}, http.StatusCreated},
				{"admin scope capped to role still writes", admin, "POST", "/api/v1/projects", newProject("shop-4"), http.StatusCreated},
				{"admin scope capped to role is no administrator", admin, "POST", "/api/v1/servers", server("web-4"), http.StatusForbidden},
				{"unknown API token", "fabu_nope", "GET", "/api/v1/me", nil, http.StatusUnauthorized},
			} {
				if got := e.asBearer(tt.tok, tt.method, tt.path, tt.body); got != tt.want {
					t.Errorf("%s: %s %s = %d, want %d", tt.name, tt.method, tt.path, got, tt.want)
				}
			}
			// ?access_token= is for the live-log socket only.
			if got := e.asBearer("", "GET", "/api/v1/projects?access_token="+jwt("j5", "s1"), nil); got != http.StatusUnauthorized {
				t.Errorf("access_token query on a REST route: %d, want 401", got)
			}
			var me User
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+jwt("j6", "s1"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			decodeInto(t, resp, &me)
			if me != (User{ID: "u2", Username: "bob", Role: "user"}) {
				t.Errorf("/me with an access token = %+v, want bob from its claims", me)
			}
		})
	}
}

func jsonBody(body any) io.Reader {
	if body == nil {
		return nil
	}
	b, _ := json.Marshal(body)
	return bytes.NewReader(b)
}

func decodeInto(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

// TestAdministrationNeedsTheAdminScope: an administrator's write token cannot create an
// administrator, nor their read token list users; only a token with the admin scope can.
func TestAdministrationNeedsTheAdminScope(t *testing.T) {
	e := newMatrixEnv(t, store.SQLite)
	mallory := map[string]any{"username": "mallory", "password": "correct horse battery", "role": "admin"}
	if got := e.as("admin-write-token", "POST", "/api/v1/users", mallory, nil); got != http.StatusForbidden {
		t.Errorf("write token creating an administrator: %d, want 403", got)
	}
	if got := e.as("admin-read-token", "GET", "/api/v1/users", nil, nil); got != http.StatusForbidden {
		t.Errorf("read token listing users: %d, want 403", got)
	}
	var n int64
	e.db.Table("users").Where("username = 'mallory'").Count(&n)
	if n != 0 {
		t.Fatal("the write token created user mallory")
	}
	if got := e.as("admin", "POST", "/api/v1/users", mallory, nil); got != http.StatusCreated {
		t.Errorf("admin token creating an administrator: %d, want 201", got)
	}
	// A write token still changes what is not administration.
	if got := e.as("admin-write-token", "POST", "/api/v1/servers", server("web-9"), nil); got != http.StatusCreated {
		t.Errorf("write token creating a server: %d, want 201", got)
	}
}
