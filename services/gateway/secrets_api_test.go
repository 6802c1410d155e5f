package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// rawBody calls path as alice and returns the status and the whole body.
func (e *env) rawBody(method, path, body string) (int, string) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// auditText returns every audit entry's action and detail, one per line.
func (e *env) auditText() string {
	e.t.Helper()
	var rows []struct{ Action, Outcome, Detail string }
	if err := e.db.Raw(`SELECT action, outcome, detail FROM audit_log ORDER BY id`).Scan(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.Action + " " + r.Outcome + " " + r.Detail + "\n")
	}
	return b.String()
}

func TestBuildSecretsAPI(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			keys := testKeyring(t) // a gateway whose keyring the test holds
			gw, err := New(Config{Secrets: keys}, e.db, discardLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			engine := httpx.NewEngine(discardLog())
			gw.Routes(engine)
			e.srv.Config.Handler = engine
			now := time.Now().UTC()
			e.exec(`INSERT INTO projects (id, name, git_url, type, deploy_path, branch, created_at, updated_at) VALUES ('p1', 'shop', '/x.git', 'static', '/srv/shop', 'main', ?, ?)`, now, now)
			const value = "s3cr3t-npm-token-\u00e9-value"
			const multi = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n"

			status, body := e.rawBody("PUT", "/api/v1/projects/p1/secrets/NPM_TOKEN", `{"value":"`+value+`"}`)
			if status != http.StatusCreated {
				t.Fatalf("create: %d %s", status, body)
			}
			var got ProjectSecret
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(body, value) {
				t.Errorf("the answer to setting a secret holds its value: %s", body)
			}
			if got.Name != "NPM_TOKEN" || got.UpdatedBy != "alice" || got.UpdatedAt.IsZero() {
				t.Errorf("created secret = %+v", got)
			}
			mj, _ := json.Marshal(map[string]string{"value": multi})
			if status, body := e.rawBody("PUT", "/api/v1/projects/p1/secrets/DEPLOY_KEY", string(mj)); status != http.StatusCreated {
				t.Fatalf("create a multi-line secret: %d %s", status, body)
			}
			if status, body := e.rawBody("PUT", "/api/v1/projects/p1/secrets/NPM_TOKEN", `{"value":"`+value+`-2"}`); status != http.StatusOK {
				t.Fatalf("replace: %d %s", status, body)
			}

			status, list := e.rawBody("GET", "/api/v1/projects/p1/secrets", "")
			var page struct{ Secrets []ProjectSecret }
			if err := json.Unmarshal([]byte(list), &page); status != http.StatusOK || err != nil {
				t.Fatalf("list: %d %s", status, list)
			}
			if len(page.Secrets) != 2 || page.Secrets[0].Name != "DEPLOY_KEY" || page.Secrets[1].Name != "NPM_TOKEN" {
				t.Errorf("list = %s", list)
			}

			// Stored sealed for its row, opening to the latest value.
			var row struct{ ID, ValueSealed string }
			if err := e.db.Raw(`SELECT id, value_sealed FROM project_secrets WHERE project_id = 'p1' AND name = 'NPM_TOKEN'`).Scan(&row).Error; err != nil {
				t.Fatal(err)
			}
			plain, err := keys.Open(row.ValueSealed, secret.BuildSecretPlace(row.ID))
			if err != nil || string(plain) != value+"-2" {
				t.Errorf("sealed value opens to %q, %v", plain, err)
			}
			if _, err := keys.Open(row.ValueSealed, secret.BuildSecretPlace("another-row")); err == nil {
				t.Error("the sealed value opens for another row")
			}

			bad := []struct{ name, path, body, want string }{
				{"name starts with a digit", "1TOKEN", `{"value":"` + value + `"}`, "use letters, digits and _"},
				{"name with a dash", "NPM-TOKEN", `{"value":"` + value + `"}`, "use letters, digits and _"},
				{"reserved prefix", "FABU_TOKEN", `{"value":"` + value + `"}`, "set by fabu"},
				{"PATH", "PATH", `{"value":"` + value + `"}`, "set by fabu"},
				{"too short to mask", "SHORT", `{"value":"abc"}`, "at least 4 bytes"},
				{"only spaces", "BLANK", `{"value":"      "}`, "only white space"},
				{"no value", "NOVALUE", `{}`, "the body must be a JSON object"},
				{"unknown field", "EXTRA", `{"value":"` + value + `","secret":"x"}`, "the body must be a JSON object"},
				{"not JSON", "NOTJSON", value, "the body must be a JSON object"},
				{"NUL", "NUL", `{"value":"abcd\u0000efgh"}`, "NUL"},
				{"too long", "LONG", `{"value":"` + strings.Repeat("v", maxSecretValue+1) + `"}`, "at most 16384"},
			}
			for _, tt := range bad {
				status, body := e.rawBody("PUT", "/api/v1/projects/p1/secrets/"+tt.path, tt.body)
				if status != http.StatusBadRequest || !strings.Contains(body, tt.want) {
					t.Errorf("%s: %d %s, want 400 saying %q", tt.name, status, body, tt.want)
				}
				if strings.Contains(body, value) {
					t.Errorf("%s: the answer repeats the value: %s", tt.name, body)
				}
			}
			if status, body := e.rawBody("PUT", "/api/v1/projects/nope/secrets/NPM_TOKEN", `{"value":"`+value+`"}`); status != http.StatusNotFound {
				t.Errorf("secret of a missing project: %d %s", status, body)
			}

			if status, body := e.rawBody("DELETE", "/api/v1/projects/p1/secrets/NPM_TOKEN", ""); status != http.StatusNoContent {
				t.Errorf("delete: %d %s", status, body)
			}
			if status, body := e.rawBody("DELETE", "/api/v1/projects/p1/secrets/NPM_TOKEN", ""); status != http.StatusNotFound || !strings.Contains(body, "no secret NPM_TOKEN") {
				t.Errorf("delete again: %d %s", status, body)
			}
			if _, list := e.rawBody("GET", "/api/v1/projects/p1/secrets", ""); strings.Contains(list, "NPM_TOKEN") {
				t.Errorf("deleted secret still listed: %s", list)
			}

			// Every change is audited, refusals too, with the secret's name and never its value.
			audit := e.auditText()
			for _, want := range []string{"project.secret.set ok", "project.secret.set refused", "project.secret.delete ok", `"name":"NPM_TOKEN"`} {
				if !strings.Contains(audit, want) {
					t.Errorf("audit log lacks %q:\n%s", want, audit)
				}
			}
			for _, v := range []string{"s3cr3t", "AAAABBBBCCCC", "abcd"} {
				if strings.Contains(audit, v) || strings.Contains(list, v) {
					t.Errorf("audit log or list holds secret text %q:\n%s", v, audit)
				}
			}
			// Deleting the project deletes its secrets.
			e.exec(`DELETE FROM projects WHERE id = 'p1'`)
			var n int64
			if err := e.db.Raw(`SELECT COUNT(*) FROM project_secrets`).Scan(&n).Error; err != nil || n != 0 {
				t.Errorf("%d secrets left after the project went (%v)", n, err)
			}
		})
	}
}

// A project's pipeline may declare build secrets per stage; bad declarations are refused.
func TestPipelineDeclaresSecrets(t *testing.T) {
	e := newEnv(t, store.SQLite)
	var srv struct{ ID string }
	if status := e.call("POST", "/api/v1/servers", server("web-1"), &srv); status != http.StatusCreated {
		t.Fatalf("create server: %d", status)
	}
	project := func(name string) map[string]any {
		return map[string]any{"name": name, "git_url": "https://gitlab.example.com/web/shop.git", "type": "static",
			"branch": "main", "deploy_path": "/srv/" + name, "server_ids": []string{srv.ID}}
	}
	body := project("shop")
	body["pipeline"] = map[string]any{"stages": []any{map[string]any{"name": "install", "run": "npm ci", "secrets": []string{"NPM_TOKEN"}}}}
	var created struct {
		ID       string          `json:"id"`
		Pipeline json.RawMessage `json:"pipeline"`
	}
	status, answer := e.rawBody("POST", "/api/v1/projects", string(mustJSON(t, body)))
	if status != http.StatusCreated {
		t.Fatalf("create a project whose pipeline declares a secret: %d %s", status, answer)
	}
	if err := json.Unmarshal([]byte(answer), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(created.Pipeline), `"secrets":["NPM_TOKEN"]`) {
		t.Errorf("stored pipeline = %s", created.Pipeline)
	}
	for _, tt := range []struct{ name, want string }{
		{"1BAD", "use letters, digits and _"},
		{"FABU_X", "set by fabu"},
	} {
		bad := project("shop2")
		bad["pipeline"] = map[string]any{"stages": []any{map[string]any{"name": "a", "run": "make", "secrets": []string{tt.name}}}}
		status, answer := e.rawBody("POST", "/api/v1/projects", string(mustJSON(t, bad)))
		if status != http.StatusBadRequest || !strings.Contains(answer, "stages[0].secrets") || !strings.Contains(answer, tt.want) {
			t.Errorf("pipeline declaring %s: %d %s", tt.name, status, answer)
		}
	}
	twice := project("shop3")
	twice["pipeline"] = map[string]any{"stages": []any{map[string]any{"name": "a", "run": "make", "env": map[string]string{"A": "1"}, "secrets": []string{"A"}}}}
	if status, answer := e.rawBody("POST", "/api/v1/projects", string(mustJSON(t, twice))); status != http.StatusBadRequest || !strings.Contains(answer, "both a variable and a secret") {
		t.Errorf("secret also a variable: %d %s", status, answer)
	}
}

func TestArtifactManifestAPI(t *testing.T) {
	e := newEnv(t, store.SQLite)
	now := time.Now().UTC()
	e.exec(`INSERT INTO projects (id, name, git_url, type, deploy_path, branch, created_at, updated_at) VALUES ('p1', 'shop', '/x.git', 'static', '/srv/shop', 'main', ?, ?)`, now, now)
	manifest := `{"format":1,"run_id":"r1","files":[{"path":"index.html","size":2,"mode":"0644","sha256":"` + strings.Repeat("a", 64) + `"}]}`
	e.exec(`INSERT INTO runs (id, project_id, ref, status, artifact_manifest, created_at, updated_at) VALUES ('r1', 'p1', 'main', 'succeeded', ?, ?, ?)`, manifest, now, now)
	e.exec(`INSERT INTO runs (id, project_id, ref, status, created_at, updated_at) VALUES ('r2', 'p1', 'main', 'building', ?, ?)`, now, now)

	status, body := e.rawBody("GET", "/api/v1/runs/r1/artifact", "")
	var got, want any
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != http.StatusOK {
		t.Fatalf("manifest: %d %s", status, body)
	}
	if err := json.Unmarshal([]byte(manifest), &want); err != nil {
		t.Fatal(err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); !bytes.Equal(g, w) {
		t.Errorf("manifest = %s, want %s", g, w)
	}
	if status, body := e.rawBody("GET", "/api/v1/runs/r2/artifact", ""); status != http.StatusNotFound || !strings.Contains(body, "has not been built yet") {
		t.Errorf("manifest of a run still building: %d %s", status, body)
	}
	if status, _ := e.rawBody("GET", "/api/v1/runs/nope/artifact", ""); status != http.StatusNotFound {
		t.Errorf("manifest of a missing run: %d", status)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
