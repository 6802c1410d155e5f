package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store"
)

func TestUserAdministration(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			for _, tc := range []struct {
				name string
				body any
				want int
			}{
				{"weak password", map[string]any{"username": "carol", "password": "short"}, 400},
				{"empty password", map[string]any{"username": "carol", "password": ""}, 400},
				{"bad name", map[string]any{"username": "carol; rm", "password": "correct horse battery"}, 400},
				{"bad role", map[string]any{"username": "carol", "password": "correct horse battery", "role": "root"}, 400},
				{"unknown field", map[string]any{"username": "carol", "password": "correct horse battery", "disabled_at": nil}, 400},
				{"taken name", map[string]any{"username": "viewer", "password": "correct horse battery"}, 409},
			} {
				if got := e.as("admin", "POST", "/api/v1/users", tc.body, nil); got != tc.want {
					t.Errorf("%s: POST /users = %d, want %d", tc.name, got, tc.want)
				}
			}
			var carol UserBody
			if got := e.as("admin", "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "correct horse battery"}, &carol); got != 201 {
				t.Fatalf("create carol: %d", got)
			}
			if carol.Role != SystemUser || carol.Disabled || carol.ID == "" {
				t.Errorf("created %+v, want an enabled user", carol)
			}
			var hash string
			e.db.Raw(`SELECT password_hash FROM users WHERE id = ?`, carol.ID).Scan(&hash)
			if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=3,p=2$") || strings.Contains(hash, "correct horse") {
				t.Errorf("stored password %q, want an argon2id hash", hash)
			}
			var list []UserBody
			if got := e.as("admin", "GET", "/api/v1/users", nil, &list); got != 200 || len(list) != len(principals)+2 {
				t.Errorf("GET /users = %d with %d users, want 200 with %d", got, len(list), len(principals)+2)
			}

			// Disabling a user refuses their credentials at once and ends their logins.
			e.exec(`INSERT INTO auth_sessions (id, user_id, expires_at) VALUES ('sess-v', 'u-viewer', ?)`, "2999-01-01 00:00:00")
			if got := e.as("viewer", "GET", "/api/v1/me", nil, nil); got != 200 {
				t.Fatalf("viewer before disabling: %d", got)
			}
			if got := e.as("admin", "PUT", "/api/v1/users/u-viewer", map[string]any{"disabled": true}, nil); got != 200 {
				t.Fatalf("disable viewer: %d", got)
			}
			if got := e.as("viewer", "GET", "/api/v1/me", nil, nil); got != http.StatusUnauthorized {
				t.Errorf("disabled viewer: GET /me = %d, want 401", got)
			}
			var revoked int64
			e.db.Raw(`SELECT COUNT(*) FROM auth_sessions WHERE user_id = 'u-viewer' AND revoked_at IS NOT NULL`).Scan(&revoked)
			if revoked != 1 {
				t.Errorf("revoked sessions of the disabled user = %d, want 1", revoked)
			}
			if got := e.as("admin", "PUT", "/api/v1/users/u-viewer", map[string]any{"disabled": false}, nil); got != 200 {
				t.Fatalf("enable viewer: %d", got)
			}
			if got := e.as("viewer", "GET", "/api/v1/me", nil, nil); got != 200 {
				t.Errorf("re-enabled viewer: GET /me = %d, want 200", got)
			}

			// A new system role applies on the next request, whatever the token said. (The
			// token asks for the admin scope, which a user's role caps to read, deploy and write.)
			e.exec(`UPDATE auth_tokens SET scopes = 'admin' WHERE id = 't-outsider'`)
			if got := e.as("outsider", "GET", "/api/v1/users", nil, nil); got != 403 {
				t.Errorf("outsider GET /users = %d, want 403", got)
			}
			if got := e.as("admin", "PUT", "/api/v1/users/u-outsider", map[string]any{"role": "admin"}, nil); got != 200 {
				t.Fatalf("promote outsider: %d", got)
			}
			if got := e.as("outsider", "GET", "/api/v1/users", nil, nil); got != 200 {
				t.Errorf("promoted outsider GET /users = %d, want 200", got)
			}
			var me User
			e.as("outsider", "GET", "/api/v1/me", nil, &me)
			if me.Role != SystemAdmin {
				t.Errorf("/me role = %q after promotion, want admin", me.Role)
			}

			// fabu keeps an enabled administrator.
			e.exec(`UPDATE users SET role = 'user' WHERE id IN ('u1', 'u-outsider', 'u-admin-write-token', 'u-admin-read-token')`)
			for _, body := range []map[string]any{{"role": "user"}, {"disabled": true}} {
				if got := e.as("admin", "PUT", "/api/v1/users/u-admin", body, nil); got != http.StatusConflict {
					t.Errorf("last admin PUT %v = %d, want 409", body, got)
				}
			}
			if got := e.as("admin", "PUT", "/api/v1/users/nope", map[string]any{"role": "user"}, nil); got != 404 {
				t.Errorf("PUT unknown user = %d, want 404", got)
			}
		})
	}
}

// TestPrivilegeEscalationIsRefused: no body a caller sends raises their own role or
// membership unless they may grant it, and every refusal is in the audit log.
func TestPrivilegeEscalationIsRefused(t *testing.T) {
	e := newMatrixEnv(t, store.SQLite)
	f := e.seed()
	e.exec(`INSERT INTO project_groups (id, name) VALUES ('pg-prod', 'prod')`)
	for _, tc := range []struct {
		name, who, method, path string
		body                    any
		want                    int
	}{
		{"own system role", "maintainer", "PUT", "/api/v1/users/u-maintainer", map[string]any{"role": "admin"}, 403},
		{"new admin user", "owner", "POST", "/api/v1/users", map[string]any{"username": "mallory", "password": "correct horse battery", "role": "admin"}, 403},
		{"own membership as owner", "maintainer", "POST", "/api/v1/project-groups/default/members", map[string]any{"username": "maintainer", "role": "owner"}, 403},
		{"own member row", "developer", "PUT", "/api/v1/project-groups/default/members/m-developer", map[string]any{"role": "owner"}, 403},
		{"join a user group", "developer", "POST", "/api/v1/user-groups/" + f["ugroup"] + "/members", map[string]any{"username": "developer"}, 403},
		{"lower the deploy role", "maintainer", "PUT", "/api/v1/projects/" + f["project"] + "/access", map[string]any{"deploy_role": "developer"}, 403},
		{"move into a group not owned", "owner", "PUT", "/api/v1/projects/" + f["project"] + "/access", map[string]any{"project_group_id": "pg-prod"}, 403},
		{"join a group not visible", "owner", "POST", "/api/v1/project-groups/pg-prod/members", map[string]any{"username": "owner", "role": "owner"}, 404},
		{"group id in a project body", "maintainer", "PUT", "/api/v1/projects/" + f["project"], map[string]any{"project_group_id": "pg-prod"}, 400},
		{"role in a server body", "admin", "POST", "/api/v1/servers", map[string]any{"name": "x", "role": "admin"}, 400},
		{"own server rule", "maintainer", "POST", "/api/v1/server-groups/" + f["sgroup"] + "/rules", map[string]any{"username": "maintainer", "may_deploy": true}, 403},
	} {
		if got := e.as(tc.who, tc.method, tc.path, tc.body, nil); got != tc.want {
			t.Errorf("%s: %s %s as %s = %d, want %d", tc.name, tc.method, tc.path, tc.who, got, tc.want)
		}
	}
	var role string
	e.db.Raw(`SELECT role FROM users WHERE id = 'u-maintainer'`).Scan(&role)
	var memberRole string
	e.db.Raw(`SELECT role FROM project_group_members WHERE id = 'm-developer'`).Scan(&memberRole)
	var deployRole, group string
	e.db.Raw(`SELECT deploy_role FROM projects WHERE id = ?`, f["project"]).Scan(&deployRole)
	e.db.Raw(`SELECT project_group_id FROM projects WHERE id = ?`, f["project"]).Scan(&group)
	if role != SystemUser || memberRole != RoleDeveloper || deployRole != RoleDeveloper || group != DefaultProjectGroup {
		t.Errorf("after the attempts: role %q, member role %q, deploy role %q, group %q; want nothing changed", role, memberRole, deployRole, group)
	}
	var refused int64
	e.db.Raw(`SELECT COUNT(*) FROM audit_log WHERE actor IN ('maintainer', 'owner', 'developer') AND outcome = ?`, audit.Refused).Scan(&refused)
	if refused < 10 {
		t.Errorf("audited refusals = %d, want every attempt (10)", refused)
	}
}

func TestListsShowOnlyViewableProjects(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			shared := e.seed() // in the default group
			e.exec(`INSERT INTO project_groups (id, name) VALUES ('pg-team', 'team')`)
			team := e.seed()
			e.exec(`UPDATE projects SET project_group_id = 'pg-team' WHERE id = ?`, team["project"])
			// The outsider is in team through a user group.
			e.exec(`INSERT INTO user_groups (id, name) VALUES ('ug-t', 'team-devs')`)
			e.exec(`INSERT INTO user_group_members (group_id, user_id) VALUES ('ug-t', 'u-outsider')`)
			e.exec(`INSERT INTO project_group_members (id, project_group_id, user_group_id, role) VALUES ('m-t', 'pg-team', 'ug-t', 'viewer')`)
			for _, tc := range []struct {
				who  string
				want []string
			}{
				{"admin", []string{shared["project"], team["project"]}},
				{"viewer", []string{shared["project"]}},
				{"outsider", []string{team["project"]}},
			} {
				var ps []ProjectBody
				if got := e.as(tc.who, "GET", "/api/v1/projects", nil, &ps); got != 200 {
					t.Fatalf("%s GET /projects: %d", tc.who, got)
				}
				var rs []RunBody
				if got := e.as(tc.who, "GET", "/api/v1/runs", nil, &rs); got != 200 {
					t.Fatalf("%s GET /runs: %d", tc.who, got)
				}
				gotP, gotR := map[string]bool{}, map[string]bool{}
				for _, p := range ps {
					gotP[p.ID] = true
				}
				for _, r := range rs {
					gotR[r.ProjectID] = true
				}
				if len(gotP) != len(tc.want) || len(gotR) != len(tc.want) {
					t.Errorf("%s sees projects %v and runs of %v, want %v", tc.who, gotP, gotR, tc.want)
				}
				for _, id := range tc.want {
					if !gotP[id] || !gotR[id] {
						t.Errorf("%s: project %s missing from projects %v or runs %v", tc.who, id, gotP, gotR)
					}
				}
			}
			// Filtering by another group's project shows nothing, not an error.
			var rs []RunBody
			if got := e.as("viewer", "GET", "/api/v1/runs?project_id="+team["project"], nil, &rs); got != 200 || len(rs) != 0 {
				t.Errorf("viewer runs of team's project: %d with %d runs, want 200 with none", got, len(rs))
			}
			if got := e.as("viewer", "GET", "/api/v1/deliveries?project_id="+shared["project"], nil, nil); got != 200 {
				t.Errorf("viewer deliveries of a project they view: %d, want 200", got)
			}
			if got := e.as("viewer", "GET", "/api/v1/deliveries?project_id="+team["project"], nil, nil); got != 404 {
				t.Errorf("viewer deliveries of a project they cannot view: %d, want 404", got)
			}
			var groups []GroupBody
			e.as("outsider", "GET", "/api/v1/project-groups", nil, &groups)
			if len(groups) != 1 || groups[0].ID != "pg-team" || groups[0].Role != RoleViewer {
				t.Errorf("outsider's project groups = %+v, want team as viewer", groups)
			}
		})
	}
}

func TestDeployRules(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			f := e.seed()
			runs := "/api/v1/projects/" + f["project"] + "/runs"
			deploy := func(who string) int { return e.as(who, "POST", runs, map[string]any{}, nil) }
			check := func(step string, want map[string]int) {
				t.Helper()
				for who, st := range want {
					if got := deploy(who); got != st {
						t.Errorf("%s: %s deploys = %d, want %d", step, who, got, st)
					}
				}
			}
			check("developer project", map[string]int{"viewer": 403, "developer": 201, "maintainer": 201, "outsider": 404})

			// Production-like: only maintainers and up.
			var acc AccessBody
			if got := e.as("owner", "PUT", "/api/v1/projects/"+f["project"]+"/access", map[string]any{"deploy_role": "maintainer"}, &acc); got != 200 || acc.DeployRole != RoleMaintainer {
				t.Fatalf("owner sets deploy_role: %d %+v", got, acc)
			}
			check("maintainer project", map[string]int{"developer": 403, "maintainer": 201, "owner": 201})
			e.as("developer", "GET", "/api/v1/projects/"+f["project"]+"/access", nil, &acc)
			if acc.MayDeploy || acc.Role != RoleDeveloper {
				t.Errorf("developer's access = %+v, want role developer, may not deploy", acc)
			}
			if got := e.as("owner", "PUT", "/api/v1/projects/"+f["project"]+"/access", map[string]any{"deploy_role": "viewer"}, nil); got != 400 {
				t.Errorf("deploy_role viewer: %d, want 400", got)
			}

			// Its server joins a restricted group: only rules let people deploy there.
			if got := e.as("admin", "PUT", "/api/v1/server-groups/"+f["sgroup"]+"/servers", map[string]any{"server_ids": []string{f["server"]}}, nil); got != 204 {
				t.Fatalf("put server in group: %d", got)
			}
			check("restricted server", map[string]int{"maintainer": 403, "owner": 403, "admin": 201})
			e.exec(`INSERT INTO user_groups (id, name) VALUES ('ug-ops', 'ops')`)
			if got := e.as("admin", "POST", "/api/v1/user-groups/ug-ops/members", map[string]any{"username": "maintainer"}, nil); got != 204 {
				t.Fatalf("add maintainer to ops: %d", got)
			}
			if got := e.as("admin", "POST", "/api/v1/server-groups/"+f["sgroup"]+"/rules", map[string]any{"user_group": "ops", "may_terminal": true}, nil); got != 201 {
				t.Fatalf("terminal-only rule: %d", got)
			}
			check("terminal-only rule", map[string]int{"maintainer": 403})
			if got := e.as("admin", "POST", "/api/v1/server-groups/"+f["sgroup"]+"/rules", map[string]any{"user_group": "ops", "may_deploy": true}, nil); got != 201 {
				t.Fatalf("deploy rule: %d", got)
			}
			check("deploy rule for ops", map[string]int{"maintainer": 201, "owner": 403})

			s, err := New(Config{Secrets: testKeyring(t)}, e.db, discardLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				user string
				want bool
			}{{"u-maintainer", true}, {"u-owner", false}, {"u-admin", true}, {"nobody", false}} {
				got, err := s.MayTerminal(context.Background(), tc.user, f["server"])
				if err != nil || got != tc.want {
					t.Errorf("MayTerminal(%s) = %v, %v; want %v", tc.user, got, err, tc.want)
				}
			}
		})
	}
}

func TestProjectGroupMembers(t *testing.T) {
	e := newMatrixEnv(t, store.SQLite)
	var pg GroupBody
	if got := e.as("admin", "POST", "/api/v1/project-groups", map[string]any{"name": "shop"}, &pg); got != 201 {
		t.Fatalf("create group: %d", got)
	}
	var m MemberBody
	if got := e.as("admin", "POST", "/api/v1/project-groups/"+pg.ID+"/members", map[string]any{"username": "developer", "role": "owner"}, &m); got != 201 || m.Username != "developer" {
		t.Fatalf("admin adds an owner: %d %+v", got, m)
	}
	base := "/api/v1/project-groups/" + pg.ID + "/members"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		want   int
	}{
		{"owner adds a viewer", "POST", base, map[string]any{"username": "viewer", "role": "viewer"}, 201},
		{"twice", "POST", base, map[string]any{"username": "viewer", "role": "viewer"}, 409},
		{"both kinds", "POST", base, map[string]any{"username": "viewer", "user_group": "x", "role": "viewer"}, 400},
		{"bad role", "POST", base, map[string]any{"username": "owner", "role": "god"}, 400},
		{"unknown user", "POST", base, map[string]any{"username": "ghost", "role": "viewer"}, 400},
		{"last owner demotes self", "PUT", base + "/" + m.ID, map[string]any{"role": "viewer"}, 409},
		{"last owner leaves", "DELETE", base + "/" + m.ID, nil, 409},
	} {
		if got := e.as("developer", tc.method, tc.path, tc.body, nil); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	var ms []MemberBody
	if got := e.as("viewer", "GET", base, nil, &ms); got != 200 || len(ms) != 2 {
		t.Errorf("viewer lists members: %d %+v, want the owner and the viewer", got, ms)
	}
	if got := e.as("viewer", "POST", base, map[string]any{"username": "outsider", "role": "viewer"}, nil); got != 403 {
		t.Errorf("viewer adds a member: %d, want 403", got)
	}
	if got := e.as("admin", "DELETE", "/api/v1/project-groups/"+DefaultProjectGroup, nil, nil); got != 409 {
		t.Errorf("delete the default group: %d, want 409", got)
	}
	f := e.seed()
	e.exec(`UPDATE projects SET project_group_id = ? WHERE id = ?`, pg.ID, f["project"])
	if got := e.as("admin", "DELETE", "/api/v1/project-groups/"+pg.ID, nil, nil); got != 409 {
		t.Errorf("delete a group with projects: %d, want 409", got)
	}
	// An owner of both groups moves a project between them.
	if got := e.as("developer", "PUT", "/api/v1/projects/"+f["project"]+"/access", map[string]any{"project_group_id": DefaultProjectGroup}, nil); got != 403 {
		t.Errorf("developer of default moves a project there: %d, want 403", got)
	}
	if got := e.as("admin", "PUT", base+"/"+m.ID, map[string]any{"role": "owner"}, nil); got != 200 {
		t.Fatalf("admin keeps developer owner: %d", got)
	}
	e.exec(`UPDATE project_group_members SET role = 'owner' WHERE id = 'm-developer'`)
	var acc AccessBody
	if got := e.as("developer", "PUT", "/api/v1/projects/"+f["project"]+"/access", map[string]any{"project_group_id": DefaultProjectGroup}, &acc); got != 200 || acc.ProjectGroupID != DefaultProjectGroup {
		t.Errorf("owner of both moves a project: %d %+v", got, acc)
	}
}
