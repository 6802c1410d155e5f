package gateway

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"fabu.dev/libs/store"
)

// TestSecurityHeaders checks the headers on every kind of answer the gateway gives: the
// SPA's page (at / and at a client route), a file of its build, API answers (ok, refused,
// unknown). The pages' policy allows no inline script and no framing; API answers may load
// nothing at all.
func TestSecurityHeaders(t *testing.T) {
	web := fstest.MapFS{
		"index.html":    {Data: []byte(`<div id=app></div>`)},
		"assets/app.js": {Data: []byte("console.log(1)")},
	}
	e := newEnvWith(t, store.SQLite, func(c *Config) { c.Web = web })
	for _, tt := range []struct {
		name, path string
		auth       bool
		status     int
		page       bool // the SPA's policy rather than the API's
	}{
		{"spa root", "/", false, 200, true},
		{"spa client route", "/servers/01ABC/terminal", false, 200, true},
		{"asset", "/assets/app.js", false, 200, true},
		{"api", "/api/v1/projects", true, 200, false},
		{"api refused", "/api/v1/projects", false, 401, false},
		{"api unknown", "/api/v1/nope", true, 404, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+tt.path, nil)
			if tt.auth {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			for name, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "same-origin",
			} {
				if got := resp.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want [%q]", name, got, want)
				}
			}
			csps := resp.Header.Values("Content-Security-Policy")
			if len(csps) != 1 {
				t.Fatalf("Content-Security-Policy = %q, want one", csps)
			}
			csp := directives(csps[0])
			if got := csp["frame-ancestors"]; got != "'none'" {
				t.Errorf("frame-ancestors = %q, want 'none'", got)
			}
			if !tt.page {
				if got := csp["default-src"]; got != "'none'" {
					t.Errorf("default-src = %q, want 'none' for an API answer", got)
				}
				return
			}
			script := csp["script-src"]
			if script != "'self'" {
				t.Errorf("script-src = %q, want 'self' (no inline script, no eval)", script)
			}
			for _, d := range []string{"connect-src", "default-src"} {
				if csp[d] != "'self'" {
					t.Errorf("%s = %q, want 'self'", d, csp[d])
				}
			}
			if csp["object-src"] != "'none'" || csp["base-uri"] != "'none'" {
				t.Errorf("object-src = %q, base-uri = %q, want 'none'", csp["object-src"], csp["base-uri"])
			}
		})
	}
}

// directives splits a Content-Security-Policy into its directives' sources.
func directives(policy string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		if name != "" {
			out[name] = strings.TrimSpace(value)
		}
	}
	return out
}
