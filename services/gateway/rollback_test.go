package gateway

import (
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/events"
	"fabu.dev/libs/store/storetest"
)

// TestRollbackRun: a rollback to a succeeded run's release is a new run of its project at
// that commit, marked with the run it puts back; a run without a release cannot be rolled
// back to; viewers and callers the environment rules send to a ticket are refused; every
// attempt is audited.
func TestRollbackRun(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			now := time.Now().UTC()
			e.exec(`INSERT INTO runs (id, project_id, ref, commit_sha, status, release_id, artifact_sha256, created_at, updated_at, started_at, finished_at)
				VALUES ('r-good', ?, 'v1.2.0', ?, 'succeeded', 'r-good', ?, ?, ?, ?, ?)`, pid, pinned, strings.Repeat("c", 64), now, now, now, now)
			e.exec(`INSERT INTO runs (id, project_id, ref, status, created_at, updated_at) VALUES ('r-failed', ?, 'main', 'failed', ?, ?)`, pid, now, now)

			var rb RunBody
			if got := e.as("developer", "POST", "/api/v1/runs/r-good/rollback", nil, &rb); got != 201 {
				t.Fatalf("rollback = %d, want 201", got)
			}
			if rb.RollbackOf != "r-good" || rb.Trigger != "rollback" || rb.TriggeredBy != "developer" ||
				rb.Commit != pinned || rb.Ref != "v1.2.0" || rb.Status != "requested" || rb.ProjectID != pid || rb.Project != "shop" {
				t.Errorf("rollback run = %+v", rb)
			}
			if n := e.count("outbox", "topic = ? AND msg_key = ?", events.TopicRunRequested, rb.ID); n != 1 {
				t.Errorf("%d run.requested events for the rollback, want 1", n)
			}
			var got RunBody
			if st := e.as("viewer", "GET", "/api/v1/runs/"+rb.ID, nil, &got); st != 200 || got.RollbackOf != "r-good" {
				t.Errorf("GET rollback run = %d %+v", st, got)
			}

			for name, c := range map[string]struct {
				who, path string
				body      any
				want      int
			}{
				"a failed run":        {"developer", "/api/v1/runs/r-failed/rollback", nil, 409},
				"an unfinished run":   {"developer", "/api/v1/runs/" + rb.ID + "/rollback", nil, 409},
				"an unknown run":      {"developer", "/api/v1/runs/nope/rollback", nil, 404},
				"a body with fields":  {"developer", "/api/v1/runs/r-good/rollback", map[string]any{"release_id": "x"}, 400},
				"a viewer":            {"viewer", "/api/v1/runs/r-good/rollback", nil, 403},
				"an outsider":         {"outsider", "/api/v1/runs/r-good/rollback", nil, 404},
				"a read-only token":   {"read-token", "/api/v1/runs/r-good/rollback", nil, 403},
				"a deploy-only token": {"deploy-token", "/api/v1/runs/r-good/rollback", nil, 201},
			} {
				if st := e.as(c.who, "POST", c.path, c.body, nil); st != c.want {
					t.Errorf("rollback to %s as %s = %d, want %d", name, c.who, st, c.want)
				}
			}

			// Environment rules apply: where a deploy needs an approved ticket, so does a rollback.
			e.setRules(pid, map[string]any{"approval": "required_below_role", "approval_role": "maintainer", "approver_role": "maintainer"})
			if st := e.as("developer", "POST", "/api/v1/runs/r-good/rollback", nil, nil); st != 403 {
				t.Errorf("rollback needing a ticket = %d, want 403", st)
			}
			if st := e.as("maintainer", "POST", "/api/v1/runs/r-good/rollback", nil, nil); st != 201 {
				t.Errorf("rollback by a maintainer = %d, want 201", st)
			}

			entries := e.auditEntries(audit.Filter{Action: "run.rollback"})
			outcomes := map[string]int{}
			for _, en := range entries {
				outcomes[en.Outcome]++
				if en.Outcome == audit.OK && en.Actor == "" {
					t.Errorf("rollback audited without its actor: %+v", en)
				}
			}
			if outcomes[audit.OK] != 3 || outcomes[audit.Refused] < 4 {
				t.Errorf("run.rollback audit outcomes = %v, want 3 OK and the refusals", outcomes)
			}
			if n := e.count("runs", "rollback_of = ?", "r-good"); n != 3 {
				t.Errorf("%d rollback runs, want 3", n)
			}
		})
	}
}
