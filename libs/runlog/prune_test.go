package runlog_test

import (
	"context"
	"testing"
	"time"

	"fabu.dev/libs/runlog"
	"fabu.dev/libs/store"
)

func TestPrune(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		now := time.Now().UTC()
		old, recent := now.Add(-40*24*time.Hour), now.Add(-2*24*time.Hour)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE runs SET status = 'succeeded', finished_at = ? WHERE id = 'r1'`, []any{old}},
			{`UPDATE runs SET status = 'failed', finished_at = ? WHERE id = 'r2'`, []any{recent}},
			{`INSERT INTO runs (id, project_id, status) VALUES ('r3', 'p1', 'building')`, nil},
		} {
			if err := db.Exec(q.sql, q.args...).Error; err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"r1", "r2", "r3"} {
			w := newWriter(t, db, id, nil)
			w.Printf("line one of %s", id)
			w.Printf("line two of %s", id)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		n, err := runlog.Prune(context.Background(), db.DB, now.Add(-30*24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Prune = %d, %v; want the log of 1 run removed", n, err)
		}
		if ls := read(t, db, "r1", 0, 0); len(ls) != 0 {
			t.Errorf("r1 (finished 40 days ago) still has %d lines", len(ls))
		}
		for _, id := range []string{"r2", "r3"} {
			if ls := read(t, db, id, 0, 0); len(ls) != 2 {
				t.Errorf("%s has %d lines after prune, want its 2 (finished recently or still running)", id, len(ls))
			}
		}
		var pruned []string
		if err := db.Raw(`SELECT id FROM runs WHERE logs_pruned_at IS NOT NULL ORDER BY id`).Scan(&pruned).Error; err != nil {
			t.Fatal(err)
		}
		if len(pruned) != 1 || pruned[0] != "r1" {
			t.Errorf("runs marked pruned = %v, want [r1]", pruned)
		}
		if n, err := runlog.Prune(context.Background(), db.DB, now.Add(-30*24*time.Hour)); err != nil || n != 0 {
			t.Errorf("second Prune = %d, %v; want 0: a pruned run is not visited again", n, err)
		}
	})
}
