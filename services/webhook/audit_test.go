package webhook

import (
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store/storetest"
)

func TestTriggerURLIsAudited(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			e.setTriggerToken(t, tokenA)
			status, out := e.post(t, "/trigger/"+tokenA, []byte(`{"ref":"release/1.2"}`), map[string]string{"User-Agent": "gitlab-runner 17"})
			if status != http.StatusAccepted {
				t.Fatalf("trigger: %d %v", status, out)
			}
			e.post(t, "/trigger", []byte(`{"ref":"main;id"}`), map[string]string{"Authorization": "Bearer " + tokenA})
			e.post(t, "/trigger/"+tokenB, nil, nil) // unknown token: in the delivery log only

			p, err := audit.Query(e.db.DB, audit.Filter{Action: "run.start"})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Entries) != 2 {
				t.Fatalf("%d run.start entries, want 2: %+v", len(p.Entries), p.Entries)
			}
			refused, ok := p.Entries[0], p.Entries[1]
			runs := e.runs(t)
			if len(runs) != 1 {
				t.Fatalf("%d runs, want 1", len(runs))
			}
			if ok.Outcome != audit.OK || ok.Actor != "trigger URL" || ok.Target != "project" || ok.TargetID != "p1" ||
				ok.IP != "127.0.0.1" || ok.UserAgent != "gitlab-runner 17" || ok.Detail["run_id"] != runs[0].ID ||
				ok.Detail["ref"] != "release/1.2" {
				t.Errorf("trigger entry = %+v", ok)
			}
			if refused.Outcome != audit.Refused || refused.TargetID != "p1" || refused.Detail["reason"] == nil {
				t.Errorf("refused trigger entry = %+v", refused)
			}
			rows, err := e.db.Raw(`SELECT actor || actor_id || action || target || target_id || ip || user_agent || detail FROM audit_log`).Rows()
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				for _, tok := range []string{tokenA, tokenB} {
					if strings.Contains(line, tok) {
						t.Errorf("audit row holds a trigger token: %s", line)
					}
				}
			}
		})
	}
}
