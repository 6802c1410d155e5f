package gateway

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// auditEntries returns the audit log, newest first.
func (e *env) auditEntries(f audit.Filter) []audit.Entry {
	e.t.Helper()
	var all []audit.Entry
	if err := audit.Each(e.db.DB, f, 0, func(en audit.Entry) error { all = append(all, en); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return all
}

// oneEntry returns the only entry of action, failing unless there is exactly one.
func (e *env) oneEntry(action string) audit.Entry {
	e.t.Helper()
	got := e.auditEntries(audit.Filter{Action: action})
	if len(got) != 1 {
		e.t.Fatalf("%d audit entries of %s, want 1: %+v", len(got), action, got)
	}
	return got[0]
}

func TestAuditRecordsChanges(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			check := func(en audit.Entry, target, targetID, outcome string) {
				t.Helper()
				if en.Actor != "alice" || en.ActorID != "u1" {
					t.Errorf("%s: actor %q/%q, want alice/u1", en.Action, en.Actor, en.ActorID)
				}
				if en.Target != target || (targetID != "" && en.TargetID != targetID) || en.TargetID == "" {
					t.Errorf("%s: target %s:%s, want %s:%s", en.Action, en.Target, en.TargetID, target, targetID)
				}
				if en.Outcome != outcome {
					t.Errorf("%s: outcome %s, want %s", en.Action, en.Outcome, outcome)
				}
				if en.IP != "127.0.0.1" {
					t.Errorf("%s: ip %q, want 127.0.0.1", en.Action, en.IP)
				}
				if !strings.HasPrefix(en.UserAgent, "Go-http-client") {
					t.Errorf("%s: user agent %q", en.Action, en.UserAgent)
				}
			}

			var srv ServerBody
			if s := e.call("POST", "/api/v1/servers", server("web-1"), &srv); s != 201 {
				t.Fatalf("create server: %d", s)
			}
			check(e.oneEntry("server.create"), "server", srv.ID, audit.OK)

			var p ProjectBody
			body := project("shop")
			body["server_ids"] = []string{srv.ID}
			delete(body, "servers")
			if s := e.call("POST", "/api/v1/projects", body, &p); s != 201 {
				t.Fatalf("create project: %d", s)
			}
			created := e.oneEntry("project.create")
			check(created, "project", p.ID, audit.OK) // the id comes from the answer
			req, _ := created.Detail["request"].(map[string]any)
			if req["name"] != "shop" || req["webhook_secret"] != audit.Redacted {
				t.Errorf("project.create request detail = %v, want name and a redacted secret", req)
			}
			if created.Detail["route"] != "POST /api/v1/projects" {
				t.Errorf("route = %v", created.Detail["route"])
			}

			body["branch"] = "release"
			if s := e.call("PUT", "/api/v1/projects/"+p.ID, body, nil); s != 200 {
				t.Fatalf("update project: %d", s)
			}
			check(e.oneEntry("project.update"), "project", p.ID, audit.OK)

			var r RunBody
			if s := e.call("POST", "/api/v1/projects/"+p.ID+"/runs", nil, &r); s != 201 {
				t.Fatalf("start run: %d", s)
			}
			run := e.oneEntry("run.start")
			check(run, "project", p.ID, audit.OK)
			if run.Detail["result_id"] != r.ID {
				t.Errorf("run.start detail result_id = %v, want run %s", run.Detail["result_id"], r.ID)
			}

			if s := e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-2")},
				"projects": []any{project("blog", "web-2")}}, nil); s != 200 {
				t.Fatalf("apply: %d", s)
			}
			applied := e.oneEntry("config.apply")
			if applied.Target != "config" || applied.Actor != "alice" || applied.IP != "127.0.0.1" || applied.Outcome != audit.OK {
				t.Errorf("config.apply entry = %+v", applied)
			}

			if s := e.call("DELETE", "/api/v1/projects/"+p.ID, nil, nil); s != 204 {
				t.Fatalf("delete project: %d", s)
			}
			check(e.oneEntry("project.delete"), "project", p.ID, audit.OK)

			// Reading is not a change and leaves no entry.
			before := len(e.auditEntries(audit.Filter{}))
			e.call("GET", "/api/v1/projects", nil, nil)
			e.call("GET", "/api/v1/servers/"+srv.ID, nil, nil)
			if after := len(e.auditEntries(audit.Filter{})); after != before {
				t.Errorf("GET requests added %d audit entries", after-before)
			}
		})
	}
}

func TestAuditRecordsRefusals(t *testing.T) {
	e := newEnv(t, store.SQLite)
	// Bad input: 400.
	if s := e.call("POST", "/api/v1/projects", map[string]any{"name": "x;rm -rf /"}, nil); s != 400 {
		t.Fatalf("bad project: %d, want 400", s)
	}
	en := e.oneEntry("project.create")
	if en.Outcome != audit.Refused || en.Actor != "alice" || en.Detail["status"] != float64(400) || en.Detail["reason"] == nil {
		t.Errorf("refused create = %+v, want refused by alice with status 400 and a reason", en)
	}
	// A run of a project that does not exist: 404.
	e.call("POST", "/api/v1/projects/nope/runs", nil, nil)
	if en := e.oneEntry("run.start"); en.Outcome != audit.Refused || en.TargetID != "nope" {
		t.Errorf("run of unknown project = %+v, want refused with target nope", en)
	}

	// Not signed in: 401, recorded without an actor.
	req, _ := http.NewRequest("DELETE", e.srv.URL+"/api/v1/servers/s1", nil)
	req.Header.Set("Authorization", "Bearer wrong-token-abcdef")
	req.Header.Set("X-Forwarded-For", "203.0.113.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	en = e.oneEntry("server.delete")
	if en.Outcome != audit.Refused || en.Actor != "" || en.TargetID != "s1" || en.IP != "127.0.0.1" ||
		en.Detail["forwarded_for"] != "203.0.113.5" {
		t.Errorf("unauthenticated delete = %+v, want refused, no actor, the connection's address", en)
	}

	// Forbidden: a read-only API token trying to change something gets 403.
	readOnly := "fabu_readonlytoken0123456789abcdefghijkl"
	now := time.Now().UTC()
	if err := e.db.Exec(`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at, name, scopes)
		VALUES ('t2', 'u1', ?, ?, ?, 'ro', 'read')`, authn.HashToken(readOnly), now.Add(time.Hour), now).Error; err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("POST", e.srv.URL+"/api/v1/servers", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer "+readOnly)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("read-only token POST /servers = %d, want 403", resp.StatusCode)
	}
	en = e.oneEntry("server.create")
	if en.Outcome != audit.Refused || en.Detail["status"] != float64(403) || en.Detail["code"] != "forbidden" {
		t.Errorf("forbidden create = %+v, want refused 403", en)
	}
	scanForSecrets(t, e, readOnly, "wrong-token-abcdef")
}

func TestAuditHoldsNoSecrets(t *testing.T) {
	e := newEnv(t, store.SQLite)
	const secretValue = "0123456789abcdef-secret"
	var p ProjectBody
	body := project("shop")
	delete(body, "servers")
	e.call("POST", "/api/v1/projects", body, &p)
	body["webhook_secret"] = "another-webhook-secret-42"
	e.call("PUT", "/api/v1/projects/"+p.ID, body, nil)
	var link struct{ Token, URL string }
	if s := e.call("POST", "/api/v1/projects/"+p.ID+"/trigger-token", nil, &link); s != 201 && s != 200 {
		t.Fatalf("trigger token: %d", s)
	}
	if link.Token == "" {
		t.Fatal("no trigger token issued")
	}
	e.call("POST", "/api/v1/connections", map[string]any{"name": "gl", "platform": "gitlab",
		"base_url": "https://gitlab.example.com", "token": "glpat-connection-token-xyz"}, nil)
	e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{project("blog")}}, nil)
	if n := len(e.auditEntries(audit.Filter{})); n < 5 {
		t.Fatalf("%d audit entries, want at least 5", n)
	}
	if en := e.oneEntry("trigger_token.rotate"); en.Outcome != audit.OK || en.TargetID != p.ID {
		t.Errorf("trigger_token.rotate = %+v", en)
	}
	scanForSecrets(t, e, secretValue, "another-webhook-secret-42", link.Token, "glpat-connection-token-xyz", token)
}

// scanForSecrets fails if any column of any audit row contains one of secrets.
func scanForSecrets(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	rows, err := e.db.Raw(`SELECT id, actor, actor_id, action, target, target_id, outcome, ip, user_agent, detail FROM audit_log`).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		cols := make([]string, 10)
		ptrs := make([]any, len(cols))
		for i := range cols {
			ptrs[i] = &cols[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		n++
		line := strings.Join(cols, "|")
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("audit row contains secret %q: %s", s, line)
			}
		}
	}
	if n == 0 {
		t.Error("no audit rows to scan")
	}
}

func TestAuditAPI(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.call("POST", "/api/v1/servers", server("web-1"), nil)
	e.call("POST", "/api/v1/servers", server("web-2"), nil)
	e.call("POST", "/api/v1/projects", map[string]any{"name": "=cmd|' /C calc'!A0"}, nil) // refused, and a formula
	var page audit.Page
	if s := e.call("GET", "/api/v1/audit?action=server.create&limit=1", nil, &page); s != 200 {
		t.Fatalf("GET /audit: %d", s)
	}
	if len(page.Entries) != 1 || page.Next == 0 || page.Entries[0].Action != "server.create" {
		t.Fatalf("first page = %+v, want one server.create and a next cursor", page)
	}
	first, next := page.Entries[0].ID, page.Next
	page = audit.Page{}
	e.call("GET", "/api/v1/audit?action=server.create&limit=1&before="+itoa(next), nil, &page)
	if len(page.Entries) != 1 || page.Entries[0].ID >= first || page.Next != 0 {
		t.Errorf("second page = %+v, want the older entry and no next", page)
	}
	page = audit.Page{}
	e.call("GET", "/api/v1/audit?outcome=refused", nil, &page)
	if len(page.Entries) != 1 || page.Entries[0].Action != "project.create" {
		t.Errorf("refused entries = %+v", page.Entries)
	}
	for _, bad := range []string{"limit=0", "limit=x", "before=-1", "since=yesterday", "outcome=maybe"} {
		if s := e.call("GET", "/api/v1/audit?"+bad, nil, nil); s != 400 {
			t.Errorf("GET /audit?%s = %d, want 400", bad, s)
		}
	}

	// A target id that a spreadsheet would run as a formula.
	if s := e.call("POST", "/api/v1/projects/=HYPERLINK(1)/runs", nil, nil); s != 404 {
		t.Fatalf("run of project =HYPERLINK(1): %d, want 404", s)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/audit/export.csv?"+url.Values{"action": {"project.create"}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export = %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "id" || recs[1][4] != "project.create" {
		t.Fatalf("export CSV = %q (err %v)", recs, err)
	}
	// The refused run of project =HYPERLINK(1): its target id cell is guarded.
	req, _ = http.NewRequest("GET", e.srv.URL+"/api/v1/audit/export.csv?action=run.start", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	recs, err = csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][6] != "'=HYPERLINK(1)" {
		t.Fatalf("export of run.start = %q (err %v), want target_id '=HYPERLINK(1)", recs, err)
	}
	for _, rec := range recs {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q starts a formula", cell)
			}
		}
	}
	if got := e.auditEntries(audit.Filter{Action: "audit.export"}); len(got) != 2 || got[0].Actor != "alice" || got[0].Outcome != audit.OK {
		t.Errorf("export entries = %+v, want two by alice", got)
	}

	// Only administrators read the log.
	if err := e.db.Exec(`UPDATE users SET role = 'user' WHERE id = 'u1'`).Error; err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/audit", "/api/v1/audit/export.csv"} {
		if s := e.call("GET", path, nil, nil); s != 403 {
			t.Errorf("GET %s as a user = %d, want 403", path, s)
		}
	}
}

func TestAuditActionNames(t *testing.T) {
	cases := []struct{ method, route, want string }{
		{"POST", "/api/v1/projects", "project.create"},
		{"POST", "/api/v1/runs/:id/cancel", "run.cancel"},
		{"POST", "/api/v1/runs/:id/rollback", "run.rollback"},
		{"PUT", "/api/v1/users/:id/role", "role.update"},
		{"DELETE", "/api/v1/project-groups/:id/members/:member_id", "member.delete"},
		{"POST", "/api/v1/servers/:id/terminal", "server.terminal"},
		{"PATCH", "/api/v1/policies", "policy.update"},
	}
	for _, c := range cases {
		if got := auditAction(c.method, c.route); got != c.want {
			t.Errorf("auditAction(%s %s) = %s, want %s", c.method, c.route, got, c.want)
		}
	}
	if k, id := auditTargetOf("/api/v1/project-groups/:id/members", "g1"); k != "project_group" || id != "g1" {
		t.Errorf("target of project-groups = %s:%s", k, id)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
