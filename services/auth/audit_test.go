package auth

import (
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// auditLog returns the audit entries of action prefix (e.g. "auth."), oldest first.
func auditLog(t *testing.T, db *store.DB, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := audit.Each(db.DB, audit.Filter{Action: action}, 0, func(e audit.Entry) error {
		out = append([]audit.Entry{e}, out...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditOfSignIns(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			clk := newClock()
			s := newService(t, db, clk)
			addUser(t, db, "u1", "alice", RoleUser, alicePassword)
			a := serve(t, s)
			creds := func(user, pw string) map[string]string { return map[string]string{"username": user, "password": pw} }

			a.login("alice", alicePassword)
			for i := 1; i <= 5; i++ {
				a.call("POST", "/api/v1/auth/login", "", creds("alice", "wrong-password-"+string(rune('0'+i))), nil)
			}
			if st, _ := a.call("POST", "/api/v1/auth/login", "", creds("alice", alicePassword), nil); st != http.StatusTooManyRequests {
				t.Fatalf("locked login = %d, want 429", st)
			}
			a.call("POST", "/api/v1/auth/login", "", creds("nobody", "some-password"), nil)

			got := auditLog(t, db, "auth.")
			var actions []string
			for _, e := range got {
				actions = append(actions, e.Action+":"+e.Outcome)
			}
			want := []string{"auth.login:ok", "auth.login:refused", "auth.login:refused", "auth.login:refused", "auth.login:refused",
				"auth.login:refused", "auth.lockout:refused", "auth.login:refused", "auth.login:refused"}
			if strings.Join(actions, " ") != strings.Join(want, " ") {
				t.Fatalf("audit = %v\nwant    %v", actions, want)
			}
			ok := got[0]
			if ok.Actor != "alice" || ok.ActorID != "u1" || ok.TargetID != "u1" || ok.IP != "127.0.0.1" || ok.UserAgent == "" {
				t.Errorf("successful login entry = %+v", ok)
			}
			failed := got[1]
			if failed.Actor != "" || failed.Target != "user" || failed.TargetID != "alice" || failed.IP != "127.0.0.1" ||
				failed.Detail["reason"] != "wrong username or password" {
				t.Errorf("failed login entry = %+v, want no actor, target user alice and the reason", failed)
			}
			lock := got[6]
			if lock.TargetID != "alice" || lock.Detail["failures"] != float64(5) || lock.Detail["locked_for"] != "1m0s" {
				t.Errorf("lockout entry = %+v", lock)
			}
			if locked := got[7]; locked.TargetID != "alice" || !strings.Contains(locked.Detail["reason"].(string), "locked") {
				t.Errorf("login while locked = %+v, want refused as locked", locked)
			}
			if unknown := got[8]; unknown.TargetID != "nobody" || unknown.Outcome != audit.Refused {
				t.Errorf("unknown user's login = %+v", unknown)
			}
			scanAudit(t, db, alicePassword, "wrong-password-1", "some-password")
		})
	}
}

func TestAuditOfPasswordsAndAPITokens(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	s := newService(t, db, nil)
	addUser(t, db, "u1", "alice", RoleAdmin, alicePassword)
	a := serve(t, s)
	tok := a.login("alice", alicePassword)

	const newPassword = "a brand new long passphrase"
	if st, _ := a.call("POST", "/api/v1/auth/password", tok.AccessToken, map[string]string{"old": "not it at all", "new": newPassword}, nil); st != http.StatusBadRequest {
		t.Fatalf("wrong old password = %d, want 400", st)
	}
	if st, _ := a.call("POST", "/api/v1/auth/password", tok.AccessToken, map[string]string{"old": alicePassword, "new": newPassword}, nil); st != http.StatusNoContent {
		t.Fatalf("change password = %d, want 204", st)
	}
	pw := auditLog(t, db, "auth.password_change")
	if len(pw) != 2 || pw[0].Outcome != audit.Refused || pw[1].Outcome != audit.OK || pw[1].Actor != "alice" || pw[1].TargetID != "u1" {
		t.Errorf("password change entries = %+v, want refused then ok by alice", pw)
	}

	var created CreatedAPIToken
	if st, _ := a.call("POST", "/api/v1/auth/api-tokens", tok.AccessToken, map[string]any{"name": "ci", "scopes": []string{"deploy"}}, &created); st != http.StatusCreated {
		t.Fatalf("create API token = %d", st)
	}
	a.call("POST", "/api/v1/auth/api-tokens", tok.AccessToken, map[string]any{"name": "bad", "scopes": []string{"root"}}, nil)
	cr := auditLog(t, db, "auth.api_token.create")
	if len(cr) != 2 || cr[0].Outcome != audit.OK || cr[0].TargetID != created.ID || cr[0].Detail["name"] != "ci" || cr[1].Outcome != audit.Refused {
		t.Errorf("API token create entries = %+v", cr)
	}
	if st, _ := a.call("DELETE", "/api/v1/auth/api-tokens/"+created.ID, tok.AccessToken, nil, nil); st != http.StatusNoContent {
		t.Fatalf("revoke = %d", st)
	}
	a.call("DELETE", "/api/v1/auth/api-tokens/"+created.ID, tok.AccessToken, nil, nil)
	rv := auditLog(t, db, "auth.api_token.revoke")
	if len(rv) != 2 || rv[0].Outcome != audit.OK || rv[0].TargetID != created.ID || rv[1].Outcome != audit.Refused {
		t.Errorf("API token revoke entries = %+v", rv)
	}
	scanAudit(t, db, alicePassword, newPassword, "not it at all", created.Token, tok.AccessToken, tok.RefreshToken)
}

// scanAudit fails if any audit row contains one of secrets.
func scanAudit(t *testing.T, db *store.DB, secrets ...string) {
	t.Helper()
	rows, err := db.Raw(`SELECT actor || '|' || actor_id || '|' || action || '|' || target || '|' || target_id || '|' ||
		ip || '|' || user_agent || '|' || detail FROM audit_log`).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		n++
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("audit row contains a secret %q: %s", s, line)
			}
		}
	}
	if n == 0 {
		t.Error("no audit rows to scan")
	}
}
