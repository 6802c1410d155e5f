package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"fabu.dev/libs/store/storetest"
)

// raw calls the API and returns the status, the body as received and its headers.
func (e *env) raw(method, path string, headers map[string]string) (int, string, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// cellsContaining lists table.column of every stored value, in every table, containing s.
func (e *env) cellsContaining(s string) []string {
	e.t.Helper()
	tables, err := e.db.Migrator().GetTables()
	if err != nil {
		e.t.Fatal(err)
	}
	var found []string
	for _, table := range tables {
		rows, err := e.db.Raw(fmt.Sprintf(`SELECT * FROM %q`, table)).Rows()
		if err != nil {
			e.t.Fatalf("scan %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatalf("scan %s: %v", table, err)
			}
			for i, v := range vals {
				text := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					text = string(b)
				}
				if strings.Contains(text, s) {
					found = append(found, table+"."+cols[i])
				}
			}
		}
		rows.Close()
	}
	return found
}

func (e *env) triggerHash(projectID string) string {
	e.t.Helper()
	var h []string
	if err := e.db.Table("projects").Where("id = ?", projectID).Pluck("trigger_token_hash", &h).Error; err != nil || len(h) != 1 {
		e.t.Fatalf("read trigger_token_hash of %s: %v %v", projectID, h, err)
	}
	return h[0]
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var tokenForm = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestTriggerToken(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			doc := map[string]any{"servers": []any{server("web-1")}, "projects": []any{project("shop", "web-1"), project("blog", "web-1")}}
			if s := e.call("POST", "/api/v1/apply", doc, nil); s != http.StatusOK {
				t.Fatalf("apply: %d", s)
			}
			var ps []ProjectBody
			e.call("GET", "/api/v1/projects", nil, &ps)
			ids := map[string]string{}
			for _, p := range ps {
				ids[p.Name] = p.ID
			}
			shop := ids["shop"]
			path := "/api/v1/projects/" + shop + "/trigger-token"
			var state TriggerTokenState
			if s := e.call("GET", path, nil, &state); s != http.StatusOK || state.Active {
				t.Fatalf("before creation: %d %+v, want 200, not active", s, state)
			}

			// Creating shows the token once, with the URL CI should POST to.
			status, body, hdr := e.raw("POST", path, nil)
			var first TriggerTokenBody
			if err := json.Unmarshal([]byte(body), &first); err != nil || status != http.StatusCreated {
				t.Fatalf("create: %d %s (%v), want 201", status, body, err)
			}
			if !tokenForm.MatchString(first.Token) {
				t.Errorf("token %q is not 32 bytes in base64url", first.Token)
			}
			if want := e.srv.URL + "/trigger/" + first.Token; first.URL != want {
				t.Errorf("url = %q, want %q", first.URL, want)
			}
			if cc := hdr.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store for an answer carrying a secret", cc)
			}
			if got := e.triggerHash(shop); got != sha256Hex(first.Token) {
				t.Errorf("stored %q, want the token's SHA-256 %q", got, sha256Hex(first.Token))
			}
			if cells := e.cellsContaining(first.Token); len(cells) > 0 {
				t.Errorf("the plaintext token is stored in %v; only its hash may be", cells)
			}

			// The token appears nowhere else: not in the project, the list or the state.
			for _, p := range []string{"/api/v1/projects/" + shop, "/api/v1/projects", path} {
				s, b, _ := e.raw("GET", p, nil)
				if s != http.StatusOK || strings.Contains(b, first.Token) || strings.Contains(b, sha256Hex(first.Token)) {
					t.Errorf("GET %s = %d %s: want 200 without the token or its hash", p, s, b)
				}
			}
			if s := e.call("GET", path, nil, &state); s != http.StatusOK || !state.Active {
				t.Errorf("after creation: %d %+v, want active", s, state)
			}

			// Behind a TLS-terminating proxy the URL is https.
			var second TriggerTokenBody
			if s, b, _ := e.raw("POST", path, map[string]string{"X-Forwarded-Proto": "https"}); s != http.StatusCreated || json.Unmarshal([]byte(b), &second) != nil {
				t.Fatalf("rotate: %d %s", s, b)
			}
			if second.Token == first.Token || !strings.HasPrefix(second.URL, "https://") {
				t.Errorf("rotation gave %+v after %q: want a new token and an https URL", second, first.Token)
			}
			if got := e.triggerHash(shop); got != sha256Hex(second.Token) {
				t.Errorf("after rotation stored %q, want the new token's hash", got)
			}

			// Editing the project, through the API or apply, keeps its trigger token.
			upd := project("shop", "web-1")
			delete(upd, "servers")
			upd["server_ids"] = []string{}
			upd["branch"] = "release"
			if s := e.call("PUT", "/api/v1/projects/"+shop, upd, nil); s != http.StatusOK {
				t.Fatalf("update project: %d", s)
			}
			doc["projects"] = []any{project("shop"), project("blog", "web-1")}
			if s := e.call("POST", "/api/v1/apply", doc, nil); s != http.StatusOK {
				t.Fatalf("apply again: %d", s)
			}
			if got := e.triggerHash(shop); got != sha256Hex(second.Token) {
				t.Errorf("after editing the project stored %q, want the token's hash kept", got)
			}

			// Every project has its own token.
			var other TriggerTokenBody
			if s := e.call("POST", "/api/v1/projects/"+ids["blog"]+"/trigger-token", nil, &other); s != http.StatusCreated || other.Token == second.Token {
				t.Errorf("second project: %d %+v", s, other)
			}

			// Revoking leaves no token; revoking again is harmless.
			for range 2 {
				if s := e.call("DELETE", path, nil, nil); s != http.StatusNoContent {
					t.Errorf("revoke: %d, want 204", s)
				}
			}
			if got := e.triggerHash(shop); got != "" {
				t.Errorf("after revocation stored %q, want none", got)
			}
			if s := e.call("GET", path, nil, &state); s != http.StatusOK || state.Active {
				t.Errorf("after revocation: %d %+v, want not active", s, state)
			}
			if got := e.triggerHash(ids["blog"]); got != sha256Hex(other.Token) {
				t.Errorf("revoking shop's token touched blog's: %q", got)
			}

			for _, m := range []string{"GET", "POST", "DELETE"} {
				if s := e.call(m, "/api/v1/projects/nope/trigger-token", nil, nil); s != http.StatusNotFound {
					t.Errorf("%s for an unknown project: %d, want 404", m, s)
				}
				req, _ := http.NewRequest(m, e.srv.URL+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s without signing in: %d, want 401", m, resp.StatusCode)
				}
			}
		})
	}
}
