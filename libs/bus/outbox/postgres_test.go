package outbox

import (
	"strconv"
	"testing"
	"time"
)

// Two relays on one PostgreSQL database publish every row exactly once, and each key's
// rows in order.
func TestTwoRelaysOnPostgres(t *testing.T) {
	db := openPostgres(t)
	const n, keys = 300, 6
	msgs := messages(n, keys)
	var rec recorder
	for i := range 2 {
		run(t, &Relay{DB: db.DB, Publisher: rec.as("relay-" + strconv.Itoa(i)), Batch: 5, Interval: 5 * time.Millisecond, Logger: quiet})
	}
	// Add while the relays run, in small transactions, so they compete for fresh rows.
	for i := 0; i < n; i += 10 {
		add(t, db, msgs[i:i+10]...)
	}
	eventually(t, "every row to be published", func() bool { return unpublished(t, db) == 0 })

	got := rec.snapshot()
	if len(got) != n {
		t.Errorf("published %d messages for %d rows, want each exactly once", len(got), n)
	}
	seen := map[string]bool{}
	last := map[string]int{} // key → index in msgs of the last message published
	index := map[string]int{}
	for i, m := range msgs {
		index[m.ID] = i
	}
	for _, m := range got {
		if seen[m.ID] {
			t.Errorf("message %s published twice", m.ID)
		}
		seen[m.ID] = true
		i := index[m.ID]
		if prev, ok := last[m.Key]; ok && prev > i {
			t.Errorf("key %s: message #%d published after #%d", m.Key, i, prev)
		}
		last[m.Key] = i
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	per := map[string]int{}
	for _, by := range rec.by {
		per[by]++
	}
	t.Logf("rows published per relay: %v", per)
}
