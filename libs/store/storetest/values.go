package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"fabu.dev/libs/store"
)

func testTimestamps(t *testing.T, db *store.DB) {
	// Nanoseconds that neither database keeps: they must be rounded or cut, not garbled.
	want := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	exec(t, db, "INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', ?)", want)

	var got time.Time
	if err := db.Raw("SELECT updated_at FROM settings WHERE key = 'k'").Row().Scan(&got); err != nil {
		t.Fatalf("scan updated_at into time.Time: %v", err)
	}
	if d := got.Sub(want).Abs(); d >= time.Millisecond {
		t.Errorf("updated_at = %v, want %v (within 1ms)", got, want)
	}
	if _, off := got.Zone(); off != 0 {
		t.Errorf("updated_at = %v, want it in UTC", got)
	}

	// Column defaults are timestamps of now.
	before := time.Now().Add(-2 * time.Second)
	exec(t, db, "INSERT INTO users (id, username, password_hash, role) VALUES ('u1', 'alice', 'h', 'admin')")
	var created time.Time
	if err := db.Raw("SELECT created_at FROM users WHERE id = 'u1'").Row().Scan(&created); err != nil {
		t.Fatalf("scan default created_at: %v", err)
	}
	if created.Before(before) || created.After(time.Now().Add(2*time.Second)) {
		t.Errorf("default created_at = %v, want about now (%v)", created, time.Now())
	}

	// Nullable timestamps scan as NULL until set.
	insertProject(t, db, "p1", "shop")
	insertRun(t, db, "r1", "p1")
	var started sql.NullTime
	if err := db.Raw("SELECT started_at FROM runs WHERE id = 'r1'").Row().Scan(&started); err != nil {
		t.Fatalf("scan started_at: %v", err)
	}
	if started.Valid {
		t.Errorf("started_at of a new run = %v, want NULL", started.Time)
	}

	// Timestamps compare in SQL in time order.
	exec(t, db, "UPDATE runs SET started_at = ? WHERE id = 'r1'", want)
	n := count(t, db, "runs", "started_at > ? AND started_at < ?", want.Add(-time.Second), want.Add(time.Second))
	if n != 1 {
		t.Errorf("runs with started_at within 1s of %v: %d, want 1", want, n)
	}
}

func testOutboxSeq(t *testing.T, db *store.DB) {
	const n = 20
	for i := range n {
		exec(t, db, "INSERT INTO outbox (id, topic, payload) VALUES (?, 'fabu.test.v1', '{}')", fmt.Sprintf("m%02d", i))
	}
	rows, err := db.Raw("SELECT seq, id, headers, published_at FROM outbox ORDER BY id").Rows()
	if err != nil {
		t.Fatalf("select outbox: %v", err)
	}
	defer func() { _ = rows.Close() }()
	last := int64(0)
	seen := 0
	for rows.Next() {
		var (
			seq       int64
			id, hdrs  string
			published sql.NullTime
		)
		if err := rows.Scan(&seq, &id, &hdrs, &published); err != nil {
			t.Fatalf("scan outbox: %v", err)
		}
		if seq <= last {
			t.Errorf("outbox %s: seq %d after %d, want strictly increasing in insertion order", id, seq, last)
		}
		if hdrs != "{}" || published.Valid {
			t.Errorf("outbox %s: headers %q, published_at %v; want defaults {} and NULL", id, hdrs, published)
		}
		last = seq
		seen++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	if seen != n {
		t.Errorf("read %d outbox rows, want %d", seen, n)
	}
}
