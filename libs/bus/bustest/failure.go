package bustest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/bus"
)

// testRetryAndDeadLetter: a failing handler is retried until it succeeds; a permanent
// error goes to the dead-letter topic at once, and an error that persists after the
// retries, with header "error". The three messages share a key, so the dead-letter topic
// receives them in order, and the first one's absence there is known when the second
// arrives.
func testRetryAndDeadLetter(t *testing.T, b bus.Bus) {
	topic := newTopic()
	recovers := msg(topic, "run-1", "recovers")
	broken := msg(topic, "run-1", "broken")
	broken.Headers = map[string]string{"trace": "t-1"}
	persistent := msg(topic, "run-1", "persistent")
	publish(t, b, recovers, broken, persistent)

	var (
		mu       sync.Mutex
		attempts = map[string]int{}
	)
	subscribe(t, b, topic, "g", func(_ context.Context, m bus.Message) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[m.ID]++
		switch {
		case m.ID == recovers.ID && attempts[m.ID] < 3:
			return errors.New("database briefly unavailable")
		case m.ID == broken.ID:
			return bus.Permanent(errors.New("payload does not decode"))
		case m.ID == persistent.ID:
			return errors.New("target keeps refusing")
		}
		return nil
	})
	var dead recorder
	subscribe(t, b, bus.DeadLetterTopic(topic), "dlq-reader", dead.handle)
	eventually(t, "the broken and the persistently failing message in the dead-letter topic", func() bool {
		return dead.hasAll([]bus.Message{broken, persistent})
	})

	mu.Lock()
	defer mu.Unlock()
	if n := attempts[recovers.ID]; n != 3 {
		t.Errorf("recovering message attempted %d times, want 3 (two failures, then success)", n)
	}
	if n := attempts[broken.ID]; n != 1 {
		t.Errorf("message failing permanently attempted %d times, want 1", n)
	}
	if n := attempts[persistent.ID]; n < 2 {
		t.Errorf("persistently failing message attempted %d times, want retries", n)
	}
	dead.mu.Lock()
	defer dead.mu.Unlock()
	want := map[string]struct {
		m       bus.Message
		errText string
	}{
		broken.ID:     {broken, "payload does not decode"},
		persistent.ID: {persistent, "target keeps refusing"},
	}
	for _, got := range dead.msgs {
		w, ok := want[got.ID]
		if !ok {
			t.Errorf("dead-letter topic got %s, want only the failed messages", describe(got))
			continue
		}
		if got.Topic != bus.DeadLetterTopic(topic) || got.Key != w.m.Key || string(got.Payload) != string(w.m.Payload) {
			t.Errorf("dead letter %s, want the original %s on %s", describe(got), describe(w.m), bus.DeadLetterTopic(topic))
		}
		if !strings.Contains(got.Headers[bus.HeaderError], w.errText) {
			t.Errorf("dead letter %s has error header %q, want it to contain %q", got.ID, got.Headers[bus.HeaderError], w.errText)
		}
		for k, v := range w.m.Headers {
			if got.Headers[k] != v {
				t.Errorf("dead letter %s lost header %s=%s: %v", got.ID, k, v, got.Headers)
			}
		}
	}
}

// testRedeliveryAfterStop: a subscriber that stops before its handler succeeded leaves
// the message to the next subscriber of its group.
func testRedeliveryAfterStop(t *testing.T, b bus.Bus) {
	topic := newTopic()
	m := msg(topic, "run-1", "deploy")
	publish(t, b, m)

	got := make(chan bus.Message, 10)
	stop := subscribe(t, b, topic, "g", func(ctx context.Context, m bus.Message) error {
		got <- m
		<-ctx.Done() // the process is shutting down in the middle of the work
		return ctx.Err()
	})
	first := receive(t, got, "the first subscriber to receive the message")
	stop()
	if first.ID != m.ID {
		t.Fatalf("first subscriber received %s, want %s", first.ID, m.ID)
	}

	var r recorder
	subscribe(t, b, topic, "g", r.handle)
	eventually(t, "the next subscriber of the group to receive the uncommitted message", func() bool {
		return r.hasAll([]bus.Message{m})
	})
}

// testClose: Close ends running subscriptions, and the bus refuses work afterwards.
func testClose(t *testing.T, b bus.Bus) {
	topic := newTopic()
	publish(t, b, msg(topic, "k", "before close"))
	var r recorder
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(context.Background(), topic, "g", r.handle) }()
	eventually(t, "the message to arrive", func() bool { return r.len() == 1 })
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close waits for Subscribe to return, but the goroutine's send of that return value
	// comes after it, so the result gets a moment to arrive rather than none at all.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Subscribe returned %v after Close, want nil", err)
		}
	case <-time.After(time.Second):
		t.Error("Subscribe still running a second after Close returned")
	}
	if err := b.Publish(context.Background(), msg(topic, "k", "after close")); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Publish after Close = %v, want bus.ErrClosed", err)
	}
	if err := b.Subscribe(context.Background(), topic, "g", r.handle); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want bus.ErrClosed", err)
	}
}

func receive(t *testing.T, ch <-chan bus.Message, what string) bus.Message {
	t.Helper()
	var m bus.Message
	eventually(t, what, func() bool {
		select {
		case m = <-ch:
			return true
		default:
			return false
		}
	})
	return m
}
