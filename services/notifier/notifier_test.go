package notifier

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/bus"
	busmem "fabu.dev/libs/bus/memory"
	"fabu.dev/libs/events"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

func forEachDB(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f(t, storetest.Open(t, driver))
		})
	}
}

// start runs a notifier on a fresh memory bus until the test ends.
func start(t *testing.T, db *store.DB) *busmem.Bus {
	t.Helper()
	b := busmem.New(busmem.Config{Retry: bus.RetryPolicy{MaxAttempts: 2, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	s := New(db, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; _ = b.Close() })
	return b
}

func finished(t *testing.T, ev events.RunFinished) bus.Message {
	t.Helper()
	m, err := events.New(events.TopicRunFinished, ev.RunID, ev)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deliveries(t *testing.T, db *store.DB, where string, args ...any) []Delivery {
	t.Helper()
	var ds []Delivery
	if err := db.Where(where, args...).Order("created_at").Find(&ds).Error; err != nil {
		t.Fatal(err)
	}
	return ds
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// The same event delivered twice records one delivery; events are recorded with their run,
// status and error.
func TestRedeliveryRecordsOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		b := start(t, db)
		failed := finished(t, events.RunFinished{RunID: "r1", ProjectID: "p1", Status: "failed",
			Error: &events.ErrorBody{Code: "internal", Message: "host web-1 unreachable"}})
		// The bus keeps per-key order, so once the later event of r1 is recorded, both
		// deliveries of the first have been handled.
		later := finished(t, events.RunFinished{RunID: "r1", ProjectID: "p1", Status: "succeeded"})
		if err := b.Publish(context.Background(), failed, failed, later); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the later event recorded", func() bool {
			return len(deliveries(t, db, "event_id = ?", later.ID)) == 1
		})
		got := deliveries(t, db, "event_id = ?", failed.ID)
		if len(got) != 1 {
			t.Fatalf("deliveries of the twice-delivered event: %d, want 1", len(got))
		}
		if d := got[0]; d.RunID != "r1" || d.Channel != "record" || d.Status != "recorded" || d.Detail != "run r1 failed: host web-1 unreachable" {
			t.Errorf("delivery %+v", d)
		}
		if d := deliveries(t, db, "event_id = ?", later.ID)[0]; d.Detail != "run r1 succeeded" {
			t.Errorf("success delivery detail %q", d.Detail)
		}
		if all := deliveries(t, db, "1 = 1"); len(all) != 2 {
			t.Errorf("%d deliveries in all, want 2", len(all))
		}
	})
}

// Two deliveries of one event handled at the same time (two notifier processes after a
// rebalance) still record one delivery.
func TestConcurrentDeliveryRecordsOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		s := New(db, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		m := finished(t, events.RunFinished{RunID: "r1", ProjectID: "p1", Status: "succeeded"})
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = s.handle(context.Background(), m) })
		}
		wg.Wait()
		var ok int
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		// A handler may fail and be retried; what matters is one delivery, recorded by a
		// handler that succeeded.
		if ok == 0 {
			t.Fatalf("every concurrent delivery failed: %v", errs)
		}
		if n := len(deliveries(t, db, "event_id = ?", m.ID)); n != 1 {
			t.Errorf("deliveries: %d, want 1 (errors %v)", n, errs)
		}
		if err := s.handle(context.Background(), m); err != nil {
			t.Errorf("a later redelivery: %v", err)
		}
		if n := len(deliveries(t, db, "event_id = ?", m.ID)); n != 1 {
			t.Errorf("deliveries after a later redelivery: %d, want 1", n)
		}
	})
}

// A payload that cannot be decoded goes to the dead-letter topic at once and records
// nothing.
func TestMalformedPayloadDeadLetters(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		b := start(t, db)
		dlq := make(chan bus.Message, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = b.Subscribe(ctx, bus.DeadLetterTopic(events.TopicRunFinished), "test", func(_ context.Context, m bus.Message) error {
				dlq <- m
				return nil
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		bad := bus.Message{ID: "bad-1", Topic: events.TopicRunFinished, Key: "r9", Payload: []byte(`{"run_id": "r9", "status": `)}
		if err := b.Publish(context.Background(), bad); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-dlq:
			if m.ID != bad.ID || string(m.Payload) != string(bad.Payload) || m.Headers["error"] == "" {
				t.Errorf("dead letter %+v, want the bad message with an error header", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("malformed event did not reach the dead-letter topic within 5s")
		}
		if ds := deliveries(t, db, "1 = 1"); len(ds) != 0 {
			t.Errorf("malformed event recorded %+v", ds)
		}
		var n int64
		db.Table("processed_events").Where("event_id = ?", bad.ID).Count(&n)
		if n != 0 {
			t.Errorf("malformed event marked processed")
		}
		// The consumer goes on with the next event.
		good := finished(t, events.RunFinished{RunID: "r9", ProjectID: "p1", Status: "succeeded"})
		if err := b.Publish(context.Background(), good); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the next event recorded", func() bool {
			return len(deliveries(t, db, "event_id = ?", good.ID)) == 1
		})
	})
}
