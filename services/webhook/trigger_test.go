package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/store/storetest"
)

// Trigger tokens of the test: well-formed (43 base64url characters), distinct.
var (
	tokenA = strings.Repeat("A", 42) + "a"
	tokenB = strings.Repeat("B", 42) + "b"
)

// setTriggerToken stores token's hash as project p1's trigger token, as the gateway does
// ("" revokes), made by an administrator (the URL acts with its creator's rights).
func (e *env) setTriggerToken(t *testing.T, token string) {
	t.Helper()
	e.setTriggerTokenBy(t, token, "u-link-admin")
}

// setTriggerTokenBy is setTriggerToken with the token made by user creator; the user
// u-link-admin, an administrator, is created when first named.
func (e *env) setTriggerTokenBy(t *testing.T, token, creator string) {
	t.Helper()
	hash := ""
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		hash = hex.EncodeToString(sum[:])
	}
	if creator == "u-link-admin" {
		if err := e.db.Exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u-link-admin', 'link-admin', 'x', 'admin', ?)
			ON CONFLICT (id) DO NOTHING`, time.Now().UTC()).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.Exec(`UPDATE projects SET trigger_token_hash = ?, trigger_token_created_by = ? WHERE id = 'p1'`, hash, creator).Error; err != nil {
		t.Fatal(err)
	}
}

// lastDelivery is the most recently recorded delivery.
func (e *env) lastDelivery(t *testing.T) Delivery {
	t.Helper()
	var d Delivery
	if err := e.db.Order("received_at DESC, id DESC").Take(&d).Error; err != nil {
		t.Fatalf("no delivery recorded: %v", err)
	}
	return d
}

type runRow struct {
	ID, ProjectID, Ref, Trigger, Status string
}

func (e *env) runs(t *testing.T) []runRow {
	t.Helper()
	var rs []runRow
	if err := e.db.Table("runs").Select("id, project_id, ref, trigger, status").Order("created_at").Scan(&rs).Error; err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestTriggerURL(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			e.setTriggerToken(t, tokenA)
			bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

			// Each request that deploys starts exactly one run of p1 at the asked or default ref.
			deploys := []struct {
				name, path, body string
				headers          map[string]string
				wantRef          string
			}{
				{"token in path, no body: the project's branch", "/trigger/" + tokenA, "", nil, "master"},
				{"token in path, empty object", "/trigger/" + tokenA, "{}", nil, "master"},
				{"token in path with a ref", "/trigger/" + tokenA, `{"ref":"release/1.2"}`, nil, "release/1.2"},
				{"bearer token with a tag", "/trigger", `{"ref":"v1.0.0"}`, bearer(tokenA), "v1.0.0"},
				{"a commit id", "/trigger/" + tokenA, `{"ref":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}`, nil, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
			}
			for _, tc := range deploys {
				before := len(e.runs(t))
				status, out := e.post(t, tc.path, []byte(tc.body), tc.headers)
				if status != http.StatusAccepted {
					t.Fatalf("%s: status %d %v, want 202", tc.name, status, out)
				}
				rs := e.runs(t)
				if len(rs) != before+1 {
					t.Fatalf("%s: %d runs, want %d", tc.name, len(rs), before+1)
				}
				r := rs[len(rs)-1]
				if out["run_id"] != r.ID || r.ProjectID != "p1" || r.Ref != tc.wantRef || r.Trigger != TriggerRun || r.Status != "requested" {
					t.Errorf("%s: answer %v, run %+v; want run_id of a requested run of p1 at %q, trigger %q", tc.name, out, r, tc.wantRef, TriggerRun)
				}
				d := e.lastDelivery(t)
				if d.Platform != PlatformTrigger || d.Verdict != VerdictTriggered || d.RunID != r.ID || d.ProjectID == nil || *d.ProjectID != "p1" || d.Ref != tc.wantRef {
					t.Errorf("%s: delivery %+v, want a triggered %q delivery of p1 for run %s at %q", tc.name, d, PlatformTrigger, r.ID, tc.wantRef)
				}
				if n := e.count(t, "outbox", "msg_key = ?", r.ID); n != 1 {
					t.Errorf("%s: %d outbox events for run %s, want 1 (RunRequested)", tc.name, n, r.ID)
				}
			}
			runsSoFar := len(e.runs(t))

			// Refused requests start nothing; each is recorded with its verdict and the status.
			refused := []struct {
				name, method, path, body string
				headers                  map[string]string
				status                   int
				project                  bool // the delivery names the project
				reason                   string
			}{
				{"shell in ref", "POST", "/trigger/" + tokenA, `{"ref":"main;id"}`, nil, 400, true, "neither a valid branch"},
				{"command substitution in ref", "POST", "/trigger/" + tokenA, `{"ref":"$(id)"}`, nil, 400, true, "neither a valid branch"},
				{"option-like ref", "POST", "/trigger", `{"ref":"--upload-pack=x"}`, bearer(tokenA), 400, true, "neither a valid branch"},
				{"unknown field", "POST", "/trigger/" + tokenA, `{"ref":"main","branch":"x"}`, nil, 400, true, "JSON object"},
				{"not JSON", "POST", "/trigger/" + tokenA, `ref=main`, nil, 400, true, "JSON object"},
				{"body too large", "POST", "/trigger/" + tokenA, `{"ref":"` + strings.Repeat("a", maxTriggerBody) + `"}`, nil, 400, true, "larger than"},
				{"wrong token", "POST", "/trigger/" + tokenB, "", nil, 401, false, "invalid trigger token"},
				{"malformed token", "POST", "/trigger/abc", "", nil, 401, false, "invalid trigger token"},
				{"wrong bearer token", "POST", "/trigger", "", bearer(tokenB), 401, false, "invalid trigger token"},
				{"no token", "POST", "/trigger", "", nil, 401, false, "no trigger token"},
				{"basic auth is not a token", "POST", "/trigger", "", map[string]string{"Authorization": "Basic " + tokenA}, 401, false, "no trigger token"},
			}
			for _, tc := range refused {
				deliveries := e.count(t, "webhook_deliveries", "1 = 1")
				status, out := e.post(t, tc.path, []byte(tc.body), tc.headers)
				if status != tc.status {
					t.Errorf("%s: status %d %v, want %d", tc.name, status, out, tc.status)
				}
				if n := len(e.runs(t)); n != runsSoFar {
					t.Errorf("%s: %d runs, want %d (nothing queued)", tc.name, n, runsSoFar)
				}
				if n := e.count(t, "webhook_deliveries", "1 = 1"); n != deliveries+1 {
					t.Errorf("%s: %d deliveries, want %d (this one recorded)", tc.name, n, deliveries+1)
					continue
				}
				d := e.lastDelivery(t)
				if d.Platform != PlatformTrigger || d.Verdict != VerdictRejected || d.RunID != "" ||
					(d.ProjectID != nil) != tc.project || !strings.Contains(d.Reason, tc.reason) {
					t.Errorf("%s: delivery %+v, want rejected, project named: %v, reason containing %q", tc.name, d, tc.project, tc.reason)
				}
			}

			// Prefetchers, crawlers and people opening the URL never deploy, and nothing is looked up.
			for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete} {
				for _, path := range []string{"/trigger/" + tokenA, "/trigger"} {
					deliveries := e.count(t, "webhook_deliveries", "1 = 1")
					req, _ := http.NewRequest(m, e.srv.URL+path, nil)
					req.Header.Set("Authorization", "Bearer "+tokenA)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
						t.Errorf("%s %s: status %d, Allow %q; want 405, POST", m, path, resp.StatusCode, resp.Header.Get("Allow"))
					}
					if n := len(e.runs(t)); n != runsSoFar {
						t.Errorf("%s %s: %d runs, want %d", m, path, n, runsSoFar)
					}
					if n := e.count(t, "webhook_deliveries", "1 = 1"); n != deliveries {
						t.Errorf("%s %s: %d deliveries, want %d", m, path, n, deliveries)
					}
				}
			}

			// Rotating replaces the token at once; revoking leaves no working token.
			e.setTriggerToken(t, tokenB)
			if status, out := e.post(t, "/trigger/"+tokenA, nil, nil); status != http.StatusUnauthorized {
				t.Errorf("rotated-away token: status %d %v, want 401", status, out)
			}
			if status, out := e.post(t, "/trigger/"+tokenB, nil, nil); status != http.StatusAccepted {
				t.Errorf("new token: status %d %v, want 202", status, out)
			}
			runsSoFar++
			e.setTriggerToken(t, "")
			for _, tok := range []string{tokenA, tokenB} {
				if status, out := e.post(t, "/trigger/"+tok, nil, nil); status != http.StatusUnauthorized {
					t.Errorf("revoked token %s…: status %d %v, want 401", tok[:4], status, out)
				}
			}
			if n := len(e.runs(t)); n != runsSoFar {
				t.Errorf("after rotation and revocation: %d runs, want %d", n, runsSoFar)
			}
			if d := e.lastDelivery(t); d.Verdict != VerdictRejected || d.ProjectID != nil {
				t.Errorf("revoked token: delivery %+v, want rejected without a project", d)
			}
			// No delivery record keeps a token, so the log of deliveries is safe to show.
			for _, tok := range []string{tokenA, tokenB} {
				like := fmt.Sprintf("%%%s%%", tok)
				if n := e.count(t, "webhook_deliveries", "reason LIKE ? OR ref LIKE ? OR event LIKE ?", like, like, like); n != 0 {
					t.Errorf("%d deliveries record token %s…", n, tok[:4])
				}
			}
		})
	}
}

// FuzzReadTriggerRequest: the trigger URL's body is empty, white space, or exactly one JSON
// object with at most a string "ref"; anything else is an invalid error, never a panic or
// a ref read from elsewhere.
func FuzzReadTriggerRequest(f *testing.F) {
	for _, s := range []string{"", "  \n", `{"ref":"main"}`, `{"ref":"v1.2"} `, `{"ref":1}`, `{"ref":"a"}{"ref":"b"}`,
		`{"ref":"main","extra":true}`, `[]`, `null`, `{"REF":"x"}`, "{\"ref\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest(http.MethodPost, "/trigger", bytes.NewReader(body))
		req, err := readTriggerRequest(r)
		if err != nil {
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			if req.Ref != "" {
				t.Fatalf("empty body gave ref %q", req.Ref)
			}
			return
		}
		if len(body) > maxTriggerBody {
			t.Fatalf("a %d-byte body was read", len(body))
		}
		var m map[string]json.RawMessage
		if trimmed[0] == '{' && json.Unmarshal(trimmed, &m) != nil {
			t.Fatalf("accepted %q, which is not one JSON object", body)
		}
		if req.Ref != "" && !bytes.Contains(bytes.ToLower(body), []byte("ref")) && !bytes.Contains(bytes.ToLower(body), []byte(`\u`)) {
			t.Fatalf("ref %q from a body without a ref field: %q", req.Ref, body)
		}
	})
}
