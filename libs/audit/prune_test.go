package audit_test

import (
	"context"
	"testing"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store/storetest"
)

func TestPrune(t *testing.T) {
	defer audit.SetPruneBatch(3)() // 7 old entries: batches of 3, 3 and 1
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			db := storetest.Open(t, driver)
			now := time.Now().UTC()
			cutoff := now.Add(-90 * 24 * time.Hour)
			for i := range 7 {
				if err := audit.Record(db.DB, audit.Entry{At: cutoff.Add(-time.Duration(i+1) * time.Hour), Actor: "old",
					Action: "project.update", Outcome: audit.OK}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 {
				if err := audit.Record(db.DB, audit.Entry{At: cutoff.Add(time.Duration(i+1) * time.Minute), Actor: "kept",
					Action: "run.start", Outcome: audit.OK}); err != nil {
					t.Fatal(err)
				}
			}
			n, err := audit.Prune(context.Background(), db.DB, cutoff)
			if err != nil || n != 7 {
				t.Fatalf("Prune = %d, %v; want 7 removed", n, err)
			}
			p, err := audit.Query(db.DB, audit.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Entries) != 3 {
				t.Fatalf("after prune %d entries, want the 2 newer ones and the prune record: %+v", len(p.Entries), p.Entries)
			}
			rec := p.Entries[0]
			if rec.Action != "audit.prune" || rec.Actor != "system" || rec.Detail["removed"] != float64(7) ||
				rec.Detail["before"] != cutoff.Format(time.RFC3339) {
				t.Errorf("newest entry = %+v, want the audit.prune record of 7 entries before %s", rec, cutoff.Format(time.RFC3339))
			}
			for _, e := range p.Entries[1:] {
				if e.Actor != "kept" {
					t.Errorf("entry %+v survived, want only entries at or after the cutoff", e)
				}
			}
			// Nothing old enough: nothing removed and nothing recorded.
			if n, err := audit.Prune(context.Background(), db.DB, cutoff); err != nil || n != 0 {
				t.Fatalf("second Prune = %d, %v; want 0", n, err)
			}
			if p, err := audit.Query(db.DB, audit.Filter{}); err != nil || len(p.Entries) != 3 {
				t.Errorf("second prune left %d entries (%v), want 3", len(p.Entries), err)
			}
		})
	}
}
