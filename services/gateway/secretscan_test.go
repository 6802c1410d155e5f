package gateway

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/container"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// secretSeed puts plaintext, sealed for the row's place, into one sealed column of the
// rows the matrix fixtures f made, so every route reading those rows has a secret to leak.
type secretSeed func(e *matrixEnv, s *Service, f fixtures, plaintext string)

// secretSeeds has an entry for every column of the schema that holds sealed values.
// TestNoStoredSecretInAnyResponse fails for a sealed column missing here: a new secret must
// be put where the scan can catch it leaking.
var secretSeeds = map[string]secretSeed{
	"projects.webhook_secret_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		e.exec(`UPDATE projects SET webhook_secret_sealed = ? WHERE id = ?`, e.seal(s, plain, SecretPlace(f["project"])), f["project"])
	},
	"forge_connections.token_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		e.exec(`UPDATE forge_connections SET token_sealed = ? WHERE id = ?`, e.seal(s, plain, TokenPlace(f["conn"])), f["conn"])
	},
	"projects.docker_password_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		e.exec(`UPDATE projects SET docker_password_sealed = ? WHERE id = ?`, e.seal(s, plain, container.PasswordPlace(f["project"])), f["project"])
	},
	"project_secrets.value_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		id := ids.New()
		e.exec(`INSERT INTO project_secrets (id, project_id, name, value_sealed, created_at, updated_at, updated_by)
			VALUES (?, ?, 'DB_PASSWORD', ?, ?, ?, 'alice')`, id, f["project"], e.seal(s, plain, secret.BuildSecretPlace(id)), time.Now().UTC(), time.Now().UTC())
	},
	"projects.git_credentials_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		e.exec(`UPDATE projects SET git_credentials_sealed = ? WHERE id = ?`, e.seal(s, "oauth2:"+plain, secret.GitCredentialsPlace(f["project"])), f["project"])
	},
	"auth_signing_keys.private_key_sealed": func(e *matrixEnv, s *Service, f fixtures, plain string) {
		// The auth service's key: the gateway reads the public half to verify tokens only.
		e.exec(`INSERT INTO auth_signing_keys (kid, public_key, private_key_sealed) VALUES (?, 'pub', ?)`,
			"k-"+f["project"], e.seal(s, plain, "auth_keys/k-"+f["project"]))
	},
}

func (e *matrixEnv) seal(s *Service, plain, place string) string {
	e.t.Helper()
	v, err := s.cfg.Secrets.Seal([]byte(plain), place)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// encodings are the forms in which a leaked secret would show up in a response.
func encodings(v string) []string {
	return []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v))}
}

// TestNoStoredSecretInAnyResponse stores a distinct secret in every sealed column, sets a
// user's password, makes a trigger link and API tokens, then calls every GET route of the
// API as an administrator and as a project owner, and the changing routes that take
// secrets, and scans each answer for any of those secrets or their stored hashes, raw or
// encoded. The only answer allowed to hold one is the one that creates a trigger URL,
// which shows it once by design.
func TestNoStoredSecretInAnyResponse(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			s, err := New(Config{Secrets: testKeyring(t)}, e.db, discardLog(), nil)
			if err != nil {
				t.Fatal(err)
			}
			engine := httpx.NewEngine(discardLog()) // serve s, whose keyring sealed the seeds
			s.Routes(engine)
			e.srv.Config.Handler = engine
			f := e.seed()
			// The connection's platform answers at once (404), not after retries to a closed port.
			forgeSrv := httptest.NewServer(http.NotFoundHandler())
			defer forgeSrv.Close()
			e.exec(`UPDATE forge_connections SET base_url = ? WHERE id = ?`, forgeSrv.URL, f["conn"])
			secrets := map[string]string{} // what → plaintext
			for col, seed := range secretSeeds {
				plain := "sekrit" + strings.ReplaceAll(col, ".", "") + ids.New()
				seed(e, s, f, plain)
				secrets[col] = plain
			}
			e.checkSeedsCoverSchema(driver)

			// Secrets that go in through the API.
			password := "Pw-" + ids.New() + "-long-enough"
			if st := e.as("admin", "POST", "/api/v1/users", map[string]any{"username": "carol", "password": password, "role": "user"}, nil); st != http.StatusCreated {
				t.Fatalf("create user = %d", st)
			}
			secrets["user password"] = password
			hookSecret := "Hook" + ids.New()
			e.as("admin", "PUT", "/api/v1/projects/"+f["project"], map[string]any{"name": "p-" + f["project"],
				"git_url": "https://gitlab.example.com/web/shop.git", "type": "static", "branch": "main",
				"deploy_path": "/srv/shop", "servers": []string{"s-" + f["server"]}, "webhook_secret": hookSecret}, nil)
			secrets["webhook secret set through the API"] = hookSecret
			var link TriggerTokenBody
			if st := e.as("admin", "POST", "/api/v1/projects/"+f["project"]+"/trigger-token", nil, &link); st != http.StatusCreated || link.Token == "" {
				t.Fatalf("create trigger token = %d %+v", st, link)
			}
			secrets["trigger token"] = link.Token
			for name, tok := range e.tokens {
				secrets["API token of "+name] = tok
			}
			var hashes []string
			if err := e.db.Raw(`SELECT password_hash FROM users WHERE username = 'carol'
				UNION ALL SELECT token_hash FROM auth_tokens
				UNION ALL SELECT trigger_token_hash FROM projects WHERE trigger_token_hash <> ''`).Scan(&hashes).Error; err != nil {
				t.Fatal(err)
			}
			for i, h := range hashes {
				secrets["stored hash "+string(rune('a'+i))] = h
			}

			scanned := 0
			for _, r := range apiRoutes(t, s) {
				if r.Method != http.MethodGet {
					continue
				}
				for _, who := range []string{"admin", "owner"} {
					status, body := e.raw(who, r.Method, f.path(r.Path))
					if status == http.StatusInternalServerError { // 503: an unreachable forge, no deployer yet
						t.Errorf("GET %s as %s: %d %s", r.Path, who, status, body)
					}
					scanned++
					for what, plain := range secrets {
						for _, enc := range encodings(plain) {
							if strings.Contains(body, enc) {
								t.Errorf("GET %s as %s answers the %s (%q): %s", r.Path, who, what, enc, body)
							}
						}
					}
				}
			}
			// The scan reads real answers: the project's own page names it and lists its secret by name.
			if st, body := e.raw("admin", "GET", "/api/v1/projects/"+f["project"]); st != http.StatusOK || !strings.Contains(body, "p-"+f["project"]) {
				t.Errorf("GET project = %d %s, want the project", st, body)
			}
			if st, body := e.raw("admin", "GET", "/api/v1/projects/"+f["project"]+"/secrets"); st != http.StatusOK || !strings.Contains(body, "DB_PASSWORD") {
				t.Errorf("GET project secrets = %d %s, want DB_PASSWORD listed by name", st, body)
			}
			if scanned < 40 {
				t.Errorf("scanned only %d answers", scanned)
			}
		})
	}
}

// raw calls path as principal name and returns the status and the whole body.
func (e *matrixEnv) raw(name, method, path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[name])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// checkSeedsCoverSchema fails for a column that holds sealed values and has no seed.
func (e *matrixEnv) checkSeedsCoverSchema(driver string) {
	e.t.Helper()
	q := `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name LIKE '%sealed%'`
	if driver == store.SQLite {
		q = `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND p.name LIKE '%sealed%'`
	}
	var cols []string
	if err := e.db.Raw(q).Scan(&cols).Error; err != nil {
		e.t.Fatal(err)
	}
	if len(cols) == 0 {
		e.t.Fatal("found no sealed columns in the schema")
	}
	for _, c := range cols {
		if secretSeeds[c] == nil {
			e.t.Errorf("%s holds sealed values but secretSeeds puts no secret there: add one, so the scan covers it", c)
		}
	}
}
