package gateway

import (
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// TestGitCredentialsAreSealedApartFromTheURL: a repository URL with user info is split on
// save; the token is sealed for the project and never answered (not to a viewer, not in the
// answer to the save, not in an error); has_credentials says it is there. A form that sends
// the URL back as shown keeps the token; a URL on another host or remove_credentials drops
// it; applying the same document twice leaves the project unchanged.
func TestGitCredentialsAreSealedApartFromTheURL(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			const tok = "glpat-Sup3rSecretT0ken"
			e := newMatrixEnv(t, driver)
			body := func(url string) map[string]any {
				return map[string]any{"name": "shop", "git_url": url, "type": "static", "branch": "main", "deploy_path": "/srv/shop"}
			}
			withCreds := "https://oauth2:" + tok + "@gitlab.example.com/web/shop.git"
			bare := "https://gitlab.example.com/web/shop.git"
			var p ProjectBody
			if st := e.as("admin", "POST", "/api/v1/projects", body(withCreds), &p); st != http.StatusCreated {
				t.Fatalf("create = %d", st)
			}
			if p.GitURL != bare || !p.HasCredentials {
				t.Errorf("created: git_url %q has_credentials %v, want %q true", p.GitURL, p.HasCredentials, bare)
			}
			stored := func() (string, string) {
				t.Helper()
				var row struct{ GitURL, GitCredentialsSealed string }
				if err := e.db.Raw(`SELECT git_url, git_credentials_sealed FROM projects WHERE id = ?`, p.ID).Scan(&row).Error; err != nil {
					t.Fatal(err)
				}
				if row.GitCredentialsSealed == "" {
					return row.GitURL, ""
				}
				plain, err := e.keys.Open(row.GitCredentialsSealed, secret.GitCredentialsPlace(p.ID))
				if err != nil {
					t.Fatalf("open sealed credentials: %v", err)
				}
				return row.GitURL, string(plain)
			}
			if u, c := stored(); u != bare || c != "oauth2:"+tok {
				t.Errorf("stored %q with credentials %q, want %q with oauth2:<token>", u, c, bare)
			}
			for _, who := range []string{"viewer", "developer", "owner", "admin"} {
				for _, path := range []string{"/api/v1/projects", "/api/v1/projects/" + p.ID} {
					st, text := e.raw(who, "GET", path)
					if st != http.StatusOK || strings.Contains(text, tok) || !strings.Contains(text, `"has_credentials":true`) {
						t.Errorf("GET %s as %s = %d %s; want 200, has_credentials, no token", path, who, st, text)
					}
				}
			}

			// The SPA sends the URL back as shown: the token stays.
			if st := e.as("admin", "PUT", "/api/v1/projects/"+p.ID, body(bare), &p); st != http.StatusOK || !p.HasCredentials {
				t.Errorf("PUT with the URL as shown = %d has_credentials %v, want 200 true", st, p.HasCredentials)
			}
			if _, c := stored(); c != "oauth2:"+tok {
				t.Errorf("after PUT with the URL as shown, credentials %q, want them kept", c)
			}
			// Another host must not receive the token.
			if st := e.as("admin", "PUT", "/api/v1/projects/"+p.ID, body("https://evil.example.com/web/shop.git"), &p); st != http.StatusOK || p.HasCredentials {
				t.Errorf("PUT with another host = %d has_credentials %v, want 200 false", st, p.HasCredentials)
			}
			if _, c := stored(); c != "" {
				t.Errorf("credentials %q kept for another host", c)
			}
			e.as("admin", "PUT", "/api/v1/projects/"+p.ID, body(withCreds), &p)
			rm := body(bare)
			rm["remove_credentials"] = true
			if st := e.as("admin", "PUT", "/api/v1/projects/"+p.ID, rm, &p); st != http.StatusOK || p.HasCredentials {
				t.Errorf("PUT remove_credentials = %d has_credentials %v, want 200 false", st, p.HasCredentials)
			}

			// apply: a document with the token in the URL is unchanged the second time.
			doc := map[string]any{"servers": []any{}, "projects": []any{body(withCreds)}}
			for i, want := range []string{"updated", "unchanged"} {
				var out struct{ Projects []Applied }
				if st := e.as("admin", "POST", "/api/v1/apply", doc, &out); st != http.StatusOK || len(out.Projects) != 1 || out.Projects[0].Action != want {
					t.Errorf("apply #%d = %d %+v, want %s", i+1, st, out.Projects, want)
				}
			}
			if u, c := stored(); u != bare || c != "oauth2:"+tok {
				t.Errorf("after apply: %q with %q, want %q with the token sealed", u, c, bare)
			}

			// A refused URL is not echoed with its token.
			st, text := e.rawBody("POST", "/api/v1/projects", `{"name":"bad","git_url":"https://u:`+tok+`@gitlab.example.com/we b.git","deploy_path":"/srv/bad"}`)
			if st != http.StatusBadRequest || strings.Contains(text, tok) {
				t.Errorf("invalid URL with a token = %d %s; want 400 without the token", st, text)
			}
		})
	}
}
