package outbox

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/bus"
)

// Committed messages are published whole and in order; rolled-back ones never are.
func TestRelayPublishesCommittedInOrder(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			msgs := messages(25, 3)
			msgs[0].Headers = map[string]string{"trace": "t-1"}
			add(t, db, msgs[:10]...)
			rolledBack := errors.New("the state change failed")
			err := db.Tx(context.Background(), func(tx *gorm.DB) error {
				if err := Add(tx, messages(5, 1)...); err != nil {
					return err
				}
				return rolledBack
			})
			if !errors.Is(err, rolledBack) {
				t.Fatalf("rolled-back transaction returned %v", err)
			}
			add(t, db, msgs[10:]...)

			var rec recorder
			run(t, &Relay{DB: db.DB, Publisher: rec.as("r"), Batch: 7, Interval: 10 * time.Millisecond, Logger: quiet})
			eventually(t, "every committed message to be published", func() bool { return len(rec.snapshot()) >= len(msgs) })
			eventually(t, "every row to be marked published", func() bool { return unpublished(t, db) == 0 })
			if got := rec.snapshot(); !reflect.DeepEqual(got, msgs) {
				t.Errorf("published %d messages:\n%v\nwant in this order:\n%v", len(got), got, msgs)
			}
		})
	}
}

// A publish that fails is retried from the oldest unpublished row: nothing lost, nothing
// out of order.
func TestRelayRetriesFailedPublish(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			msgs := messages(12, 2)
			add(t, db, msgs...)
			rec := recorder{failures: 3}
			run(t, &Relay{DB: db.DB, Publisher: rec.as("r"), Batch: 5, Interval: 5 * time.Millisecond, Logger: quiet})
			eventually(t, "every message to be published after the failures", func() bool { return unpublished(t, db) == 0 })
			if got := rec.snapshot(); !reflect.DeepEqual(got, msgs) {
				t.Errorf("published %v\nwant %v", got, msgs)
			}
		})
	}
}

// Kick wakes a relay whose polling interval is far away.
func TestRelayKick(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			first, second := messages(2, 1)[0], messages(2, 1)[1]
			add(t, db, first)
			var rec recorder
			relay := &Relay{DB: db.DB, Publisher: rec.as("r"), Interval: time.Hour, Logger: quiet}
			run(t, relay)
			// The first row goes out in the relay's first pass; after that it waits an hour.
			eventually(t, "the first pass to publish the first message", func() bool { return unpublished(t, db) == 0 })
			add(t, db, second)
			relay.Kick()
			eventually(t, "the kicked relay to publish the second message", func() bool { return len(rec.snapshot()) == 2 })
		})
	}
}

// Published rows older than the retention are deleted; unpublished and recent ones stay.
func TestRelayCleansOldRows(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			msgs := messages(3, 1)
			add(t, db, msgs...)
			old, recent := time.Now().UTC().Add(-48*time.Hour), time.Now().UTC().Add(-time.Hour)
			for id, at := range map[string]time.Time{msgs[0].ID: old, msgs[1].ID: recent} {
				if err := db.Model(&row{}).Where("id = ?", id).Update("published_at", at).Error; err != nil {
					t.Fatalf("mark row published: %v", err)
				}
			}
			relay := &Relay{DB: db.DB, Publisher: new(recorder).as("r"), Logger: quiet}
			relay.init()
			if err := relay.clean(context.Background()); err != nil {
				t.Fatalf("clean: %v", err)
			}
			var left []string
			if err := db.Model(&row{}).Order("seq").Pluck("id", &left).Error; err != nil {
				t.Fatalf("list rows: %v", err)
			}
			if want := []string{msgs[1].ID, msgs[2].ID}; !reflect.DeepEqual(left, want) {
				t.Errorf("rows left %v, want %v (the recent published one and the unpublished one)", left, want)
			}
		})
	}
}

func TestAddRejectsBadMessages(t *testing.T) {
	db := databases[0].open(t)
	tests := []struct {
		name string
		m    bus.Message
	}{
		{"no topic", bus.Message{ID: "1", Payload: []byte("{}")}},
		{"binary payload", bus.Message{ID: "2", Topic: "t", Payload: []byte{0xff, 0xfe}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Add(db.DB, tt.m); err == nil {
				t.Errorf("Add(%+v) = nil, want an error", tt.m)
			}
		})
	}
	if err := Add(db.DB, bus.Message{Topic: "t", Payload: []byte("{}")}); err != nil {
		t.Fatalf("Add without ID: %v", err)
	}
	var id string
	if err := db.Model(&row{}).Pluck("id", &id).Error; err != nil || id == "" {
		t.Errorf("message added without ID stored ID %q (%v), want a fresh one", id, err)
	}
}
