package auth

import (
	"net/http"
	"testing"
	"time"

	"fabu.dev/libs/store/storetest"
)

// TestTokenAdministrationNeedsAdminScope: minting, listing and revoking API tokens with an
// API token needs its admin scope; a read, deploy or write token is refused, so a leaked
// short-lived token cannot mint a long-lived one. A signed-in person manages their own
// tokens whatever their role.
func TestTokenAdministrationNeedsAdminScope(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleAdmin, alicePassword)
	addUser(t, db, "u2", "bob", RoleUser, "bob's long password")
	a := serve(t, s)
	alice := a.login("alice", alicePassword)
	bob := a.login("bob", "bob's long password")
	mint := func(token string, scopes ...string) (int, CreatedAPIToken) {
		var made CreatedAPIToken
		st, _ := a.call("POST", "/api/v1/auth/api-tokens", token, map[string]any{"name": "t", "scopes": scopes}, &made)
		return st, made
	}
	tokens := map[string]string{}
	for _, sc := range []string{"read", "deploy", "write", "admin"} {
		st, made := mint(alice.AccessToken, sc)
		if st != http.StatusCreated {
			t.Fatalf("alice's session minting a %s token: %d", sc, st)
		}
		tokens[sc] = made.Token
	}
	_, victim := mint(alice.AccessToken, "read")
	for _, sc := range []string{"read", "deploy", "write"} {
		if st, _ := mint(tokens[sc], "read"); st != http.StatusForbidden {
			t.Errorf("a %s token minting a read token: %d, want 403", sc, st)
		}
		if st, _ := a.call("GET", "/api/v1/auth/api-tokens", tokens[sc], nil, nil); st != http.StatusForbidden {
			t.Errorf("a %s token listing tokens: %d, want 403", sc, st)
		}
		if st, _ := a.call("DELETE", "/api/v1/auth/api-tokens/"+victim.ID, tokens[sc], nil, nil); st != http.StatusForbidden {
			t.Errorf("a %s token revoking a token: %d, want 403", sc, st)
		}
	}
	if st, _ := mint(tokens["admin"], "read"); st != http.StatusCreated {
		t.Errorf("an admin token minting a read token: %d, want 201", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", tokens["admin"], nil, nil); st != http.StatusOK {
		t.Errorf("an admin token listing tokens: %d, want 200", st)
	}
	if st, _ := a.call("DELETE", "/api/v1/auth/api-tokens/"+victim.ID, tokens["admin"], nil, nil); st != http.StatusNoContent {
		t.Errorf("an admin token revoking a token: %d, want 204", st)
	}
	// A user without the admin role manages their tokens from their session.
	st, made := mint(bob.AccessToken, "write")
	if st != http.StatusCreated {
		t.Fatalf("bob's session minting a write token: %d, want 201", st)
	}
	if st, _ := a.call("GET", "/api/v1/auth/api-tokens", bob.AccessToken, nil, nil); st != http.StatusOK {
		t.Errorf("bob's session listing tokens: %d, want 200", st)
	}
	if st, _ := mint(made.Token, "read"); st != http.StatusForbidden {
		t.Errorf("bob's write token minting a token: %d, want 403", st)
	}
}

// TestDisabledUserIsRefusedEverywhere: once an administrator disables a user, neither the
// user's access token (still within its lifetime) nor their API tokens reach any route.
func TestDisabledUserIsRefusedEverywhere(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			s := newService(t, db, nil)
			addUser(t, db, "u1", "alice", RoleAdmin, alicePassword)
			a := serve(t, s)
			sess := a.login("alice", alicePassword)
			var tok CreatedAPIToken
			if st, _ := a.call("POST", "/api/v1/auth/api-tokens", sess.AccessToken,
				map[string]any{"name": "ci", "scopes": []string{"admin"}}, &tok); st != http.StatusCreated {
				t.Fatalf("create: %d", st)
			}
			var victim CreatedAPIToken
			a.call("POST", "/api/v1/auth/api-tokens", sess.AccessToken, map[string]any{"name": "victim", "scopes": []string{"read"}}, &victim)
			if err := db.Exec(`UPDATE users SET disabled_at = ? WHERE id = 'u1'`, time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
			for _, cred := range []struct{ name, token string }{{"access token", sess.AccessToken}, {"API token", tok.Token}} {
				for _, r := range []struct {
					method, path string
					body         any
				}{
					{"POST", "/api/v1/auth/api-tokens", map[string]any{"name": "more", "scopes": []string{"read"}}},
					{"GET", "/api/v1/auth/api-tokens", nil},
					{"DELETE", "/api/v1/auth/api-tokens/" + victim.ID, nil},
					{"GET", "/api/v1/auth/identities", nil},
					{"POST", "/api/v1/auth/password", map[string]string{"old": alicePassword, "new": "another long password"}},
				} {
					if st, _ := a.call(r.method, r.path, cred.token, r.body, nil); st != http.StatusUnauthorized {
						t.Errorf("%s %s with a disabled user's %s: %d, want 401", r.method, r.path, cred.name, st)
					}
				}
			}
			var n int64
			db.Table("auth_tokens").Where("user_id = 'u1'").Count(&n)
			if n != 2 {
				t.Errorf("the disabled user has %d API tokens, want the 2 made before", n)
			}
		})
	}
}
