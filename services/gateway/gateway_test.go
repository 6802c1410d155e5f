package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

const (
	token   = "test-token-0123456789abcdef"
	hostKey = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)

type env struct {
	t     *testing.T
	db    *store.DB
	srv   *httptest.Server
	kicks atomic.Int32
	keys  *secret.Keyring // the gateway's Config.Secrets
}

func newEnv(t *testing.T, driver string) *env {
	t.Helper()
	return newEnvWith(t, driver, func(*Config) {})
}

// newEnvWith is newEnv with configure changing the gateway's Config first.
func newEnvWith(t *testing.T, driver string, configure func(*Config)) *env {
	t.Helper()
	db := storetest.Open(t, driver)
	now := time.Now().UTC()
	sum := sha256.Sum256([]byte(token))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u1', 'alice', 'x', 'admin', ?)`, []any{now}},
		{`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at) VALUES ('t1', 'u1', ?, ?, ?)`,
			[]any{hex.EncodeToString(sum[:]), now.Add(time.Hour), now}},
	} {
		if err := db.Exec(q.sql, q.args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, db: db}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Secrets: testKeyring(t), LogPoll: 20 * time.Millisecond}
	configure(&cfg)
	e.keys = cfg.Secrets
	s, err := New(cfg, db, log, func() { e.kicks.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(log)
	s.Routes(engine)
	e.srv = httptest.NewServer(engine)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) call(method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func server(name string) map[string]any {
	return map[string]any{"name": name, "host": "127.0.0.1", "port": 2222, "user": "deploy", "host_key": hostKey}
}

func project(name string, servers ...string) map[string]any {
	return map[string]any{"name": name, "git_url": "https://gitlab.example.com/web/shop.git", "type": "static",
		"source_dir": "dist", "branch": "main", "deploy_path": "/srv/" + name, "servers": servers,
		"webhook_secret": "0123456789abcdef-secret"}
}

func TestAuthenticationRequired(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for _, h := range []string{"", "Bearer ", "Bearer wrong", "Basic " + token, token} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/projects", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
		}
	}
	// An expired token is refused too.
	if err := e.db.Exec(`UPDATE auth_tokens SET expires_at = ?`, time.Now().UTC().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if got := e.call("GET", "/api/v1/me", nil, nil); got != http.StatusUnauthorized {
		t.Errorf("expired token: status %d, want 401", got)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t, store.SQLite)
	var sv ServerBody
	if got := e.call("POST", "/api/v1/servers", server("web-1"), &sv); got != http.StatusCreated {
		t.Fatalf("create server: %d", got)
	}
	bad := func(over map[string]any) map[string]any {
		p := map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git", "type": "static",
			"source_dir": "dist", "branch": "main", "deploy_path": "/srv/shop", "server_ids": []string{sv.ID}}
		for k, v := range over {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name string
		path string
		body any
		want int
	}{
		{"malformed JSON", "/api/v1/servers", `{"name":`, 400},
		{"unknown field", "/api/v1/servers", `{"name":"x","role":"admin"}`, 400},
		{"server without host key", "/api/v1/servers", map[string]any{"name": "web-2", "host": "h", "user": "deploy"}, 400},
		{"server with bad host key", "/api/v1/servers", map[string]any{"name": "web-2", "host": "h", "user": "deploy", "host_key": "nonsense"}, 400},
		{"server with hostile host", "/api/v1/servers", map[string]any{"name": "web-2", "host": "h;id", "user": "deploy", "host_key": hostKey}, 400},
		{"duplicate server", "/api/v1/servers", server("web-1"), 409},
		{"branch main;id", "/api/v1/projects", bad(map[string]any{"branch": "main;id"}), 400},
		{"branch $(id)", "/api/v1/projects", bad(map[string]any{"branch": "$(id)"}), 400},
		{"branch `id`", "/api/v1/projects", bad(map[string]any{"branch": "`id`"}), 400},
		{"relative deploy path", "/api/v1/projects", bad(map[string]any{"deploy_path": "srv/shop"}), 400},
		{"deploy path with ..", "/api/v1/projects", bad(map[string]any{"deploy_path": "/srv/../etc"}), 400},
		{"deploy path /", "/api/v1/projects", bad(map[string]any{"deploy_path": "/"}), 400},
		{"source dir escaping", "/api/v1/projects", bad(map[string]any{"source_dir": "../.."}), 400},
		{"git url option", "/api/v1/projects", bad(map[string]any{"git_url": "--upload-pack=touch /tmp/x"}), 400},
		{"git url ext", "/api/v1/projects", bad(map[string]any{"git_url": "ext::sh -c id"}), 400},
		{"unknown server", "/api/v1/projects", bad(map[string]any{"server_ids": []string{"nope"}}), 400},
		{"unsupported type", "/api/v1/projects", bad(map[string]any{"type": "cobol"}), 400},
		{"short webhook secret", "/api/v1/projects", bad(map[string]any{"webhook_secret": "short"}), 400},
		{"valid project", "/api/v1/projects", bad(nil), 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]any
			if got := e.call("POST", tt.path, tt.body, &out); got != tt.want {
				t.Errorf("status = %d %v, want %d", got, out, tt.want)
			}
			if tt.want >= 400 && (out["code"] == nil || out["message"] == "") {
				t.Errorf("error body %v lacks code and message", out)
			}
		})
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			doc := map[string]any{"servers": []any{server("web-1"), server("web-2")},
				"projects": []any{project("shop", "web-1", "web-2")}}
			type result struct{ Servers, Projects []Applied }
			var got result
			if s := e.call("POST", "/api/v1/apply", doc, &got); s != 200 {
				t.Fatalf("apply: %d", s)
			}
			if got.Projects[0].Action != "created" || got.Servers[1].Action != "created" {
				t.Errorf("first apply = %+v", got)
			}
			e.call("POST", "/api/v1/apply", doc, &got)
			if got.Projects[0].Action != "unchanged" || got.Servers[0].Action != "unchanged" {
				t.Errorf("second apply = %+v, want unchanged", got)
			}
			doc["projects"] = []any{project("shop", "web-1")}
			e.call("POST", "/api/v1/apply", doc, &got)
			if got.Projects[0].Action != "updated" {
				t.Errorf("apply with fewer servers = %+v, want updated", got)
			}
			var ps []ProjectBody
			e.call("GET", "/api/v1/projects", nil, &ps)
			if len(ps) != 1 || len(ps[0].ServerIDs) != 1 || !ps[0].HasWebhookSecret || ps[0].WebhookSecret != "" {
				t.Errorf("projects = %+v: want one project, one server, a hidden secret", ps)
			}
			// A bad project rolls back the whole document.
			doc = map[string]any{"servers": []any{server("web-3")}, "projects": []any{project("bad", "no-such-server")}}
			if s := e.call("POST", "/api/v1/apply", doc, nil); s != 400 {
				t.Errorf("apply with an unknown server = %d, want 400", s)
			}
			var svs []ServerBody
			e.call("GET", "/api/v1/servers", nil, &svs)
			if len(svs) != 2 {
				t.Errorf("servers after a failed apply = %d, want 2 (all or nothing)", len(svs))
			}
		})
	}
}

func TestStartRun(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
				"projects": []any{project("shop", "web-1")}}, nil)
			var ps []ProjectBody
			e.call("GET", "/api/v1/projects", nil, &ps)
			for _, ref := range []string{"main;id", "$(id)", "`id`", "--upload-pack=x", "a b"} {
				if s := e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", map[string]string{"ref": ref}, nil); s != 400 {
					t.Errorf("ref %q: status %d, want 400", ref, s)
				}
			}
			var r RunBody
			if s := e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &r); s != 201 {
				t.Fatalf("start run: %d", s)
			}
			if r.Status != "requested" || r.Ref != "main" || r.Trigger != "manual" || r.Project != "shop" {
				t.Errorf("run = %+v", r)
			}
			var n int64
			e.db.Table("outbox").Where("topic = ? AND msg_key = ?", "fabu.run.requested.v1", r.ID).Count(&n)
			if n != 1 || e.kicks.Load() != 1 {
				t.Errorf("requested events = %d, relay kicks = %d; want 1 each", n, e.kicks.Load())
			}
			var got RunBody
			if s := e.call("GET", "/api/v1/runs/"+r.ID, nil, &got); s != 200 || got.ID != r.ID {
				t.Errorf("get run = %d %+v", s, got)
			}
			var list []RunBody
			e.call("GET", "/api/v1/runs?project_id="+ps[0].ID, nil, &list)
			if len(list) != 1 {
				t.Errorf("runs of project = %d, want 1", len(list))
			}
			if s := e.call("GET", "/api/v1/runs/nope", nil, nil); s != 404 {
				t.Errorf("unknown run = %d, want 404", s)
			}
		})
	}
}

func TestSPAServesClientRoutes(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	web := fstest.MapFS{
		"index.html":    {Data: []byte("<div id=app></div>")},
		"assets/app.js": {Data: []byte("console.log(1)")},
		"favicon.svg":   {Data: []byte("<svg/>")},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(Config{Secrets: testKeyring(t), Web: web}, db, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine := httpx.NewEngine(log)
	s.Routes(engine)
	srv := httptest.NewServer(engine)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		path, want string
		status     int
	}{
		{"/", "<div id=app></div>", 200},
		{"/index.html", "<div id=app></div>", 200},
		{"/projects/01ABC", "<div id=app></div>", 200},
		{"/runs/01ABC", "<div id=app></div>", 200},
		{"/assets/app.js", "console.log(1)", 200},
		{"/../../etc/passwd", "<div id=app></div>", 200},
		{"/api/v1/nope", `{"code":"not_found","message":"no route GET /api/v1/nope"}`, 404},
	} {
		resp, err := client.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || (tt.want != "" && string(b) != tt.want) {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.StatusCode, b, tt.status, tt.want)
		}
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
		"projects": []any{project("shop", "web-1")}}, nil)
	var ps []ProjectBody
	e.call("GET", "/api/v1/projects", nil, &ps)
	var r RunBody
	e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &r)
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/api/v1/projects/" + ps[0].ID, 204},
		{"/api/v1/projects/" + ps[0].ID, 404},
		{"/api/v1/servers/" + ps[0].ServerIDs[0], 204},
		{"/api/v1/servers/" + ps[0].ServerIDs[0], 404},
	} {
		if got := e.call("DELETE", tt.path, nil, nil); got != tt.want {
			t.Errorf("DELETE %s = %d, want %d", tt.path, got, tt.want)
		}
	}
	if got := e.call("GET", "/api/v1/runs/"+r.ID, nil, nil); got != 404 {
		t.Errorf("run of a deleted project = %d, want 404 (deleted with it)", got)
	}
}

func testKeyring(t *testing.T) *secret.Keyring {
	t.Helper()
	k, err := secret.LoadOrCreateFile(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWebhookSecretSealedAndTriggers(t *testing.T) {
	e := newEnv(t, store.SQLite)
	p := project("shop", "web-1")
	p["platform"] = "github"
	p["trigger_branches"] = []string{"release/*", "main"}
	p["trigger_tags"] = []string{"v*"}
	doc := map[string]any{"servers": []any{server("web-1")}, "projects": []any{p}}
	var got struct{ Projects []Applied }
	e.call("POST", "/api/v1/apply", doc, &got)
	var stored Project
	if err := e.db.Where("name = ?", "shop").Take(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if stored.WebhookSecretSealed == "" || strings.Contains(stored.WebhookSecretSealed, "0123456789abcdef-secret") {
		t.Errorf("webhook secret stored as %q, want sealed", stored.WebhookSecretSealed)
	}
	if stored.Platform != "github" || stored.TriggerBranches != "main\nrelease/*" || stored.TriggerTags != "v*" ||
		stored.TriggerKeyword != DefaultKeyword || stored.TriggerKeywordScope != "head" {
		t.Errorf("stored project %+v", stored)
	}
	e.call("POST", "/api/v1/apply", doc, &got)
	if got.Projects[0].Action != "unchanged" {
		t.Errorf("re-applying the same secret = %s, want unchanged", got.Projects[0].Action)
	}
	var body map[string]any
	e.call("GET", "/api/v1/projects/"+stored.ID, nil, &body)
	if _, ok := body["webhook_secret"]; ok || body["has_webhook_secret"] != true || body["trigger_keyword"] != "devops" {
		t.Errorf("project body %v: secret must be write-only", body)
	}
	off := ""
	p["trigger_keyword"] = &off
	p["trigger_keyword_scope"] = "any"
	e.call("POST", "/api/v1/apply", doc, &got)
	e.db.Where("name = ?", "shop").Take(&stored)
	if stored.TriggerKeyword != "" || stored.TriggerKeywordScope != "any" {
		t.Errorf("keyword %q scope %q after switching it off", stored.TriggerKeyword, stored.TriggerKeywordScope)
	}
	for _, bad := range []map[string]any{
		{"platform": "bitbucket"},
		{"trigger_branches": []string{"main;id"}},
		{"trigger_tags": []string{"v[1"}},
		{"trigger_keyword_scope": "tail"},
	} {
		q := project("bad", "web-1")
		for k, v := range bad {
			q[k] = v
		}
		if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{q}}, nil); s != 400 {
			t.Errorf("apply %v = %d, want 400", bad, s)
		}
	}
}

func TestLinkedProjectKeepsItsPlatformAndLink(t *testing.T) {
	e := newEnv(t, store.SQLite)
	doc := map[string]any{"servers": []any{server("web-1")}, "projects": []any{project("shop", "web-1")}}
	e.call("POST", "/api/v1/apply", doc, nil)
	if err := e.db.Exec(`UPDATE projects SET connection_id = 'c1', repo_path = 'web/shop', hook_id = '42', platform = 'github'`).Error; err != nil {
		t.Fatal(err)
	}
	var got struct{ Projects []Applied }
	if s := e.call("POST", "/api/v1/apply", doc, &got); s != 200 || got.Projects[0].Action != "unchanged" {
		t.Errorf("re-apply without a platform = %d %+v, want unchanged", s, got)
	}
	var ps []ProjectBody
	e.call("GET", "/api/v1/projects", nil, &ps)
	if ps[0].Platform != "github" || ps[0].ConnectionID != "c1" || ps[0].RepoPath != "web/shop" || !ps[0].HookInstalled {
		t.Errorf("project = %+v, want its link kept and shown", ps[0])
	}
	p := project("shop", "web-1")
	p["platform"] = "gitlab"
	if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{p}}, nil); s != 409 {
		t.Errorf("changing a linked project's platform = %d, want 409", s)
	}
	// Read-only fields in a body are ignored, not assigned.
	body := map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git", "deploy_path": "/srv/shop",
		"branch": "main", "server_ids": ps[0].ServerIDs, "connection_id": "evil", "repo_path": "other/repo", "hook_installed": false}
	if s := e.call("PUT", "/api/v1/projects/"+ps[0].ID, body, nil); s != 200 {
		t.Fatalf("PUT = %d", s)
	}
	var after ProjectBody
	e.call("GET", "/api/v1/projects/"+ps[0].ID, nil, &after)
	if after.ConnectionID != "c1" || after.RepoPath != "web/shop" || !after.HookInstalled || after.Platform != "github" {
		t.Errorf("after PUT = %+v, want the link unchanged", after)
	}
}

func TestApplyConnectionsAndLinks(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			p := project("shop", "web-1")
			p["connection"], p["repo_path"] = "gh", "acme/shop"
			delete(p, "platform")
			doc := map[string]any{
				"connections": []any{map[string]any{"name": "gh", "platform": "github", "token": "ghp_secret-token-value"}},
				"servers":     []any{server("web-1")},
				"projects":    []any{p},
			}
			type result struct{ Connections, Servers, Projects []Applied }
			var got result
			if s := e.call("POST", "/api/v1/apply", doc, &got); s != 200 {
				t.Fatalf("apply = %d", s)
			}
			if got.Connections[0].Action != "created" || got.Projects[0].Action != "created" {
				t.Errorf("first apply = %+v", got)
			}
			e.call("POST", "/api/v1/apply", doc, &got)
			if got.Connections[0].Action != "unchanged" || got.Projects[0].Action != "unchanged" {
				t.Errorf("second apply = %+v, want unchanged", got)
			}
			var ps []ProjectBody
			e.call("GET", "/api/v1/projects", nil, &ps)
			if ps[0].Platform != "github" || ps[0].RepoPath != "acme/shop" || ps[0].ConnectionID == "" {
				t.Errorf("linked project = %+v", ps[0])
			}
			var conns []ConnectionBody
			e.call("GET", "/api/v1/connections", nil, &conns)
			if len(conns) != 1 || !conns[0].HasToken || conns[0].Token != "" || conns[0].BaseURL != "https://github.com" {
				t.Errorf("connections = %+v", conns)
			}
			var stored string
			e.db.Table("forge_connections").Select("token_sealed").Scan(&stored)
			if stored == "" || strings.Contains(stored, "ghp_secret-token-value") {
				t.Errorf("token stored as %q, want sealed", stored)
			}
			// A document without the token keeps it; another repository path updates the link.
			doc["connections"] = []any{map[string]any{"name": "gh", "platform": "github"}}
			p["repo_path"] = "acme/shop2"
			e.call("POST", "/api/v1/apply", doc, &got)
			if got.Connections[0].Action != "unchanged" || got.Projects[0].Action != "updated" {
				t.Errorf("apply with a new repo path = %+v", got)
			}
			for name, bad := range map[string]map[string]any{
				"unknown connection": {"connection": "nope", "repo_path": "a/b"},
				"repo path alone":    {"connection": "", "repo_path": "a/b"},
				"hostile repo path":  {"connection": "gh", "repo_path": "../etc"},
				"platform mismatch":  {"connection": "gh", "repo_path": "a/b", "platform": "gitee"},
			} {
				q := project("bad", "web-1")
				for k, v := range bad {
					q[k] = v
				}
				if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{q}}, nil); s != 400 {
					t.Errorf("%s: apply = %d, want 400", name, s)
				}
			}
		})
	}
}

// Gitee projects choose how their hook proves the secret: signature (the default, and the
// mode fabu installs hooks in) or password, for a hook made by hand. Other platforms have no
// choice, and a project with fabu's hook stays in signature mode.
func TestWebhookMode(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")}}, nil)
	gitee := func(mode string) map[string]any {
		p := project("gitee-shop", "web-1")
		p["platform"] = "gitee"
		if mode != "" {
			p["webhook_mode"] = mode
		}
		return p
	}
	mode := func() (stored, shown string) {
		e.db.Raw(`SELECT webhook_mode FROM projects WHERE name = 'gitee-shop'`).Scan(&stored)
		var ps []ProjectBody
		e.call("GET", "/api/v1/projects", nil, &ps)
		for _, p := range ps {
			if p.Name == "gitee-shop" {
				shown = p.WebhookMode
			}
		}
		return stored, shown
	}
	for _, tt := range []struct{ give, stored, shown string }{
		{"", "", "signature"}, {"password", "password", "password"}, {"signature", "", "signature"},
	} {
		if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{gitee(tt.give)}}, nil); s != 200 {
			t.Fatalf("apply webhook_mode %q = %d", tt.give, s)
		}
		if stored, shown := mode(); stored != tt.stored || shown != tt.shown {
			t.Errorf("webhook_mode %q: stored %q shown %q, want %q %q", tt.give, stored, shown, tt.stored, tt.shown)
		}
	}
	gh := project("gh-shop", "web-1")
	gh["platform"], gh["webhook_mode"] = "github", "password"
	if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{gh}}, nil); s != 400 {
		t.Errorf("password mode on a GitHub project = %d, want 400", s)
	}
	gh["webhook_mode"] = ""
	var ps []map[string]any
	e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{gh}}, nil)
	e.call("GET", "/api/v1/projects", nil, &ps)
	for _, p := range ps {
		if _, has := p["webhook_mode"]; p["name"] == "gh-shop" && has {
			t.Errorf("GitHub project shows webhook_mode %v, want none", p["webhook_mode"])
		}
	}
	if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{gitee("Password")}}, nil); s != 400 {
		t.Errorf("webhook_mode Password = %d, want 400", s)
	}
	e.db.Exec(`UPDATE projects SET hook_id = '7', webhook_mode = '' WHERE name = 'gitee-shop'`)
	if s := e.call("POST", "/api/v1/apply", map[string]any{"projects": []any{gitee("password")}}, nil); s != 400 {
		t.Errorf("password mode with fabu's hook installed = %d, want 400", s)
	}
}
