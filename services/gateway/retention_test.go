package gateway

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/store/storetest"
)

// TestRetention: the loop removes audit entries and run logs past their ages, the API tells
// an expired log from an empty one, and zero ages keep everything.
func TestRetention(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
				"projects": []any{project("shop", "web-1")}}, nil)
			var ps []ProjectBody
			if s := e.call("GET", "/api/v1/projects", nil, &ps); s != 200 || len(ps) != 1 {
				t.Fatalf("projects = %d %+v, want shop", s, ps)
			}
			now := time.Now().UTC()
			e.exec(`INSERT INTO runs (id, project_id, status, finished_at) VALUES ('old', ?, 'succeeded', ?)`, ps[0].ID, now.Add(-31*24*time.Hour))
			e.exec(`INSERT INTO runs (id, project_id, status, finished_at) VALUES ('new', ?, 'failed', ?)`, ps[0].ID, now.Add(-29*24*time.Hour))
			for _, id := range []string{"old", "new"} {
				w, err := runlog.NewWriter(context.Background(), e.db.DB, id, nil)
				if err != nil {
					t.Fatal(err)
				}
				w.Printf("building %s", id)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if err := audit.Record(e.db.DB, audit.Entry{At: now.Add(-400 * 24 * time.Hour), Actor: "ancient", Action: "project.update", Outcome: audit.OK}); err != nil {
				t.Fatal(err)
			}

			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			keep, err := New(Config{Secrets: testKeyring(t)}, e.db, log, nil) // zero ages: keep forever
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			keep.runRetention(ctx) // returns at once: nothing to do
			keep.prune(context.Background(), now)
			if n := len(e.auditEntries(audit.Filter{Actor: "ancient"})); n != 1 {
				t.Fatalf("zero retention removed audit entries (%d left)", n)
			}

			s, err := New(Config{Secrets: testKeyring(t), RetentionConfig: RetentionConfig{
				AuditRetention: 365 * 24 * time.Hour, LogRetention: 30 * 24 * time.Hour, RetentionEvery: time.Millisecond}}, e.db, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			s.runRetention(ctx) // prunes at once, then every millisecond until ctx ends

			if n := len(e.auditEntries(audit.Filter{Actor: "ancient"})); n != 0 {
				t.Errorf("audit entry older than 365 days survived")
			}
			if rec := e.auditEntries(audit.Filter{Action: "audit.prune"}); len(rec) != 1 || rec[0].Detail["removed"] != float64(1) {
				t.Errorf("audit.prune records = %+v, want one of 1 removed entry", rec)
			}
			var page struct {
				Lines        []runlog.Line `json:"lines"`
				Done         bool          `json:"done"`
				LogsPrunedAt *time.Time    `json:"logs_pruned_at"`
			}
			if s := e.call("GET", "/api/v1/runs/old/logs", nil, &page); s != 200 || len(page.Lines) != 0 || page.LogsPrunedAt == nil || !page.Done {
				t.Errorf("log of a run finished 31 days ago = %d %+v, want no lines, done and logs_pruned_at", s, page)
			}
			page.LogsPrunedAt = nil
			if s := e.call("GET", "/api/v1/runs/new/logs", nil, &page); s != 200 || len(page.Lines) != 1 || page.LogsPrunedAt != nil {
				t.Errorf("log of a run finished 29 days ago = %d %+v, want its line and no logs_pruned_at", s, page)
			}
			var run struct {
				LogsPrunedAt *time.Time `json:"logs_pruned_at"`
			}
			if s := e.call("GET", "/api/v1/runs/old", nil, &run); s != 200 || run.LogsPrunedAt == nil {
				t.Errorf("GET run old = %d, logs_pruned_at %v; want it set", s, run.LogsPrunedAt)
			}
		})
	}
}
