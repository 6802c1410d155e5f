package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
)

// wantRole is, per route, who may call it: "any" signed-in user, "admin" only, or the least
// project role (on the project, the run's project or the project group in the path). It is
// written out by hand, apart from authz.go's rules, so the matrix tests the rules rather
// than repeating them. A route registered in Routes and missing here fails the test.
var wantRole = map[string]string{
	"GET /api/v1/me":                                       "any",
	"GET /api/v1/ssh/public-key":                           "any",
	"GET /api/v1/audit":                                    "admin",
	"GET /api/v1/audit/export.csv":                         "admin",
	"GET /api/v1/servers":                                  "any",
	"GET /api/v1/servers/:id":                              "any",
	"GET /api/v1/servers/:id/terminal":                     "admin", // or a server group rule with may_terminal (terminal_test.go)
	"POST /api/v1/servers":                                 "admin",
	"PUT /api/v1/servers/:id":                              "admin",
	"DELETE /api/v1/servers/:id":                           "admin",
	"GET /api/v1/projects":                                 "any",
	"POST /api/v1/projects":                                "maintainer",
	"GET /api/v1/projects/:id":                             "viewer",
	"PUT /api/v1/projects/:id":                             "maintainer",
	"DELETE /api/v1/projects/:id":                          "owner",
	"POST /api/v1/projects/:id/runs":                       "developer",
	"GET /api/v1/projects/:id/trigger-token":               "viewer",
	"POST /api/v1/projects/:id/trigger-token":              "maintainer",
	"DELETE /api/v1/projects/:id/trigger-token":            "maintainer",
	"GET /api/v1/projects/:id/source":                      "viewer",
	"PUT /api/v1/projects/:id/source":                      "maintainer",
	"DELETE /api/v1/projects/:id/source":                   "maintainer",
	"GET /api/v1/projects/:id/refs":                        "viewer",
	"GET /api/v1/projects/:id/hook":                        "viewer",
	"POST /api/v1/projects/:id/hook":                       "maintainer",
	"DELETE /api/v1/projects/:id/hook":                     "maintainer",
	"GET /api/v1/projects/:id/access":                      "viewer",
	"PUT /api/v1/projects/:id/access":                      "owner",
	"POST /api/v1/apply":                                   "admin",
	"GET /api/v1/projects/:id/approval":                    "viewer",
	"PUT /api/v1/projects/:id/approval":                    "owner",
	"POST /api/v1/projects/:id/tickets":                    "developer",
	"GET /api/v1/tickets":                                  "any",
	"GET /api/v1/tickets/:id":                              "viewer",
	"POST /api/v1/tickets/:id/approve":                     "maintainer", // approvers: maintainers by default; see TestTickets*
	"POST /api/v1/tickets/:id/reject":                      "maintainer",
	"POST /api/v1/tickets/:id/cancel":                      "admin", // the requester (a user outside the matrix) or an administrator
	"GET /api/v1/deliveries":                               "admin", // without ?project_id; see TestDeliveriesOfAProject
	"GET /api/v1/runs":                                     "any",
	"GET /api/v1/runs/:id":                                 "viewer",
	"GET /api/v1/runs/:id/logs":                            "viewer",
	"GET /api/v1/runs/:id/git":                             "viewer",
	"GET /api/v1/runs/:id/logs/ws":                         "viewer",
	"POST /api/v1/runs/:id/cancel":                         "developer",
	"POST /api/v1/runs/:id/rollback":                       "developer",
	"GET /api/v1/runs/:id/artifact":                        "viewer",
	"GET /api/v1/projects/:id/secrets":                     "developer",
	"PUT /api/v1/projects/:id/secrets/:name":               "maintainer",
	"DELETE /api/v1/projects/:id/secrets/:name":            "maintainer",
	"GET /api/v1/connections":                              "admin",
	"POST /api/v1/connections":                             "admin",
	"GET /api/v1/connections/:id":                          "admin",
	"PUT /api/v1/connections/:id":                          "admin",
	"DELETE /api/v1/connections/:id":                       "admin",
	"POST /api/v1/connections/:id/sync":                    "admin",
	"GET /api/v1/connections/:id/repos":                    "admin",
	"DELETE /api/v1/connections/:id/repos/:repo_id":        "admin",
	"POST /api/v1/connections/:id/repos/:repo_id/restore":  "admin",
	"GET /api/v1/users":                                    "admin",
	"POST /api/v1/users":                                   "admin",
	"PUT /api/v1/users/:id":                                "admin",
	"GET /api/v1/user-groups":                              "any",
	"POST /api/v1/user-groups":                             "admin",
	"PUT /api/v1/user-groups/:id":                          "admin",
	"DELETE /api/v1/user-groups/:id":                       "admin",
	"GET /api/v1/user-groups/:id/members":                  "admin",
	"POST /api/v1/user-groups/:id/members":                 "admin",
	"DELETE /api/v1/user-groups/:id/members/:user_id":      "admin",
	"GET /api/v1/project-groups":                           "any",
	"POST /api/v1/project-groups":                          "admin",
	"PUT /api/v1/project-groups/:id":                       "admin",
	"DELETE /api/v1/project-groups/:id":                    "admin",
	"GET /api/v1/project-groups/:id/members":               "viewer",
	"POST /api/v1/project-groups/:id/members":              "owner",
	"PUT /api/v1/project-groups/:id/members/:member_id":    "owner",
	"DELETE /api/v1/project-groups/:id/members/:member_id": "owner",
	"GET /api/v1/server-groups":                            "admin",
	"POST /api/v1/server-groups":                           "admin",
	"PUT /api/v1/server-groups/:id":                        "admin",
	"DELETE /api/v1/server-groups/:id":                     "admin",
	"PUT /api/v1/server-groups/:id/servers":                "admin",
	"GET /api/v1/server-groups/:id/rules":                  "admin",
	"POST /api/v1/server-groups/:id/rules":                 "admin",
	"DELETE /api/v1/server-groups/:id/rules/:rule_id":      "admin",
}

// principal is a row of the matrix: a user with a role in the default project group (or
// none, or system admin) calling with an API token of some scopes.
type principal struct {
	name   string
	role   string // admin, a project role, or "" for an outsider
	scopes string
}

var principals = []principal{
	{"admin", "admin", "admin"},
	{"owner", RoleOwner, "read,deploy,write"},
	{"maintainer", RoleMaintainer, "read,deploy,write"},
	{"developer", RoleDeveloper, "read,deploy,write"},
	{"viewer", RoleViewer, "read,deploy,write"},
	{"outsider", "", "read,deploy,write"},
	{"read-token", RoleMaintainer, "read"},
	{"deploy-token", RoleMaintainer, "deploy"},
	{"admin-write-token", "admin", "read,deploy,write"},
	{"admin-read-token", "admin", "read"},
}

// wantAdminScope are the routes whose administrator-only calls need a token's admin
// scope, not just write or read: users, user and project groups, server groups, forge
// connections, and apply (which writes connections).
var wantAdminScope = []string{"/api/v1/users", "/api/v1/user-groups", "/api/v1/project-groups",
	"/api/v1/server-groups", "/api/v1/connections", "/api/v1/apply"}

func needsAdminScope(method, route string) bool {
	if wantRole[method+" "+route] != "admin" {
		return false
	}
	for _, f := range wantAdminScope {
		if route == f || strings.HasPrefix(route, f+"/") {
			return true
		}
	}
	return false
}

// allowed is the expected outcome of p calling route (method and path).
func (p principal) allowed(method, route string) bool {
	want := wantRole[method+" "+route]
	if needsAdminScope(method, route) && p.scopes != "admin" {
		return false
	}
	if route == "/api/v1/servers/:id/terminal" && p.scopes == "read" { // a shell is a change
		return false
	}
	if method != http.MethodGet {
		switch {
		case p.scopes == "read":
			return false
		case p.scopes == "deploy" && route != "/api/v1/projects/:id/runs" && route != "/api/v1/runs/:id/cancel" &&
			route != "/api/v1/runs/:id/rollback":
			return false
		}
	}
	switch {
	case p.role == "admin":
		return true
	case want == "any":
		return true
	case want == "admin":
		return false
	}
	return p.role != "" && roleRank(p.role) >= roleRank(want)
}

// matrixEnv is a gateway with one user per principal, each holding its role in the
// default project group.
type matrixEnv struct {
	*env
	tokens map[string]string // principal name → API token
}

func newMatrixEnv(t *testing.T, driver string) *matrixEnv {
	e := &matrixEnv{env: newEnv(t, driver), tokens: map[string]string{}}
	now := time.Now().UTC()
	for _, p := range principals {
		uid := "u-" + p.name
		sysRole := SystemUser
		if p.role == "admin" {
			sysRole = SystemAdmin
		}
		e.exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?, ?, 'x', ?, ?)`, uid, p.name, sysRole, now)
		if p.role != "" && p.role != "admin" {
			e.exec(`INSERT INTO project_group_members (id, project_group_id, user_id, role) VALUES (?, 'default', ?, ?)`, "m-"+p.name, uid, p.role)
		}
		raw := authn.APITokenPrefix + p.name + "-0123456789abcdef"
		e.exec(`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at, name, scopes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			"t-"+p.name, uid, authn.HashToken(raw), now.Add(time.Hour), now, p.name, p.scopes)
		e.tokens[p.name] = raw
	}
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if err := e.db.Exec(sql, args...).Error; err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// fixtures are fresh rows for one request, so a DELETE allowed for one principal leaves
// the next one something to be refused.
type fixtures map[string]string

func (e *matrixEnv) seed() fixtures {
	f := fixtures{}
	for _, k := range []string{"server", "project", "run", "conn", "repo", "user", "ugroup", "pgroup", "member", "sgroup", "rule", "ticket"} {
		f[k] = ids.New()
	}
	now := time.Now().UTC()
	e.exec(`INSERT INTO servers (id, name, host, port, ssh_user, host_key) VALUES (?, ?, '127.0.0.1', 22, 'deploy', ?)`, f["server"], "s-"+f["server"], hostKey)
	e.exec(`INSERT INTO projects (id, name, git_url, type, deploy_path, branch) VALUES (?, ?, 'https://gitlab.example.com/web/shop.git', 'static', '/srv/shop', 'main')`,
		f["project"], "p-"+f["project"])
	e.exec(`UPDATE projects SET connection_id = ?, repo_path = 'web/shop', hook_id = '7' WHERE id = ?`, f["conn"], f["project"])
	e.exec(`INSERT INTO project_servers (project_id, server_id) VALUES (?, ?)`, f["project"], f["server"])
	e.exec(`INSERT INTO runs (id, project_id, ref, status, created_at, updated_at) VALUES (?, ?, 'main', 'succeeded', ?, ?)`, f["run"], f["project"], now, now)
	e.exec(`INSERT INTO forge_connections (id, name, platform, base_url) VALUES (?, ?, 'gitlab', 'http://127.0.0.1:1')`, f["conn"], "c-"+f["conn"])
	e.exec(`INSERT INTO forge_repos (id, connection_id, remote_id, path) VALUES (?, ?, '1', 'web/shop')`, f["repo"], f["conn"])
	e.exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?, ?, 'x', 'user', ?)`, f["user"], "user-"+strings.ToLower(f["user"]), now)
	e.exec(`INSERT INTO user_groups (id, name) VALUES (?, ?)`, f["ugroup"], "ug-"+f["ugroup"])
	e.exec(`INSERT INTO user_group_members (group_id, user_id) VALUES (?, ?)`, f["ugroup"], f["user"])
	e.exec(`INSERT INTO project_groups (id, name) VALUES (?, ?)`, f["pgroup"], "pg-"+f["pgroup"])
	e.exec(`INSERT INTO project_group_members (id, project_group_id, user_id, role) VALUES (?, 'default', ?, 'viewer')`, f["member"], f["user"])
	e.exec(`INSERT INTO server_groups (id, name) VALUES (?, ?)`, f["sgroup"], "sg-"+f["sgroup"])
	e.exec(`INSERT INTO server_group_rules (id, server_group_id, user_id, may_deploy) VALUES (?, ?, ?, TRUE)`, f["rule"], f["sgroup"], f["user"])
	e.exec(`INSERT INTO project_secrets (id, project_id, name, value_sealed, created_at, updated_at) VALUES (?, ?, 'API_TOKEN', 'v1:x:y', ?, ?)`,
		ids.New(), f["project"], now, now)
	e.exec(`UPDATE runs SET artifact_manifest = '{"format":1}', release_id = ? WHERE id = ?`, f["run"], f["run"])
	e.exec(`INSERT INTO release_tickets (id, project_id, ref, commit_sha, title, status, source, requested_by, requester_id,
		approvals_needed, expires_at) VALUES (?, ?, 'main', ?, 'release', 'pending', 'user', 'someone', ?, 1, ?)`,
		f["ticket"], f["project"], strings.Repeat("ab", 20), f["user"], now.Add(time.Hour))
	return f
}

// path fills route's parameters with f's rows.
func (f fixtures) path(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if !strings.HasPrefix(p, ":") {
			continue
		}
		switch kind := parts[i-1] + "/" + p; kind {
		case "servers/:id":
			parts[i] = f["server"]
		case "projects/:id":
			parts[i] = f["project"]
		case "runs/:id":
			parts[i] = f["run"]
		case "connections/:id":
			parts[i] = f["conn"]
		case "repos/:repo_id":
			parts[i] = f["repo"]
		case "users/:id", "members/:user_id":
			parts[i] = f["user"]
		case "user-groups/:id":
			parts[i] = f["ugroup"]
		case "project-groups/:id":
			// Members are managed in the group where the principals hold their roles.
			parts[i] = f["pgroup"]
			if strings.Contains(route, "/members") {
				parts[i] = DefaultProjectGroup
			}
		case "members/:member_id":
			parts[i] = f["member"]
		case "server-groups/:id":
			parts[i] = f["sgroup"]
		case "rules/:rule_id":
			parts[i] = f["rule"]
		case "secrets/:name":
			parts[i] = "API_TOKEN" // seeded for every project
		case "tickets/:id":
			parts[i] = f["ticket"]
		default:
			panic("no fixture for " + kind + " in " + route)
		}
	}
	return strings.Join(parts, "/")
}

// apiRoutes are the routes Routes registers under /api/v1.
func apiRoutes(t *testing.T, s *Service) []gin.RouteInfo {
	engine := httpx.NewEngine(discardLog())
	s.Routes(engine)
	var out []gin.RouteInfo
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	if len(out) < 50 {
		t.Fatalf("only %d API routes registered", len(out))
	}
	return out
}

// TestPermissionMatrix calls every API route as every principal and checks that it is
// refused (403, or 404 where existence is hidden) exactly when the principal lacks the
// right. Bodies are malformed JSON, so an admitted change stops at validation (400) and
// the matrix tests the permission layer only; the other tests of this file prove what
// admitted calls do.
func TestPermissionMatrix(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			s, err := New(Config{Secrets: testKeyring(t)}, e.db, discardLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range apiRoutes(t, s) {
				key := r.Method + " " + r.Path
				if _, ok := wantRole[key]; !ok {
					t.Errorf("%s has no expected permissions in wantRole: add it (and a rule in authz.go)", key)
					continue
				}
				if _, ok := rules[key]; !ok {
					t.Errorf("%s has no rule in authz.go's rules", key)
				}
				for _, p := range principals {
					f := e.seed()
					var body any
					if r.Method != http.MethodGet {
						body = `{"malformed":`
					}
					got := e.asBearer(e.tokens[p.name], r.Method, f.path(r.Path), body)
					denied := got == http.StatusForbidden || got == http.StatusNotFound
					if got == http.StatusUnauthorized || denied == p.allowed(r.Method, r.Path) {
						t.Errorf("%s as %s: status %d, want allowed=%v", key, p.name, got, p.allowed(r.Method, r.Path))
					}
				}
			}
			for key := range wantRole {
				if _, ok := rules[key]; !ok {
					t.Errorf("wantRole lists %s, which has no rule; remove it or register the route", key)
				}
			}
		})
	}
}

// TestRouteWithoutRuleIsRefused: a route nobody wrote a rule for is closed, even to
// administrators.
func TestRouteWithoutRuleIsRefused(t *testing.T) {
	e := newEnv(t, store.SQLite)
	s, err := New(Config{Secrets: testKeyring(t)}, e.db, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(discardLog())
	s.Routes(engine)
	reached := false
	engine.Group("/api/v1", s.authenticate, s.authorize).GET("/unruled", func(c *gin.Context) { reached = true })
	e.srv.Config.Handler = engine
	if got := e.call("GET", "/api/v1/unruled", nil, nil); got != http.StatusForbidden || reached {
		t.Errorf("GET /api/v1/unruled as admin: %d (handler reached: %v), want 403", got, reached)
	}
}

// as calls path as principal name and decodes the answer into out.
func (e *matrixEnv) as(name, method, path string, body any, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, jsonBody(body))
	req.Header.Set("Authorization", "Bearer "+e.tokens[name])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}
