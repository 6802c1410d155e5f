package memory

import (
	"context"
	"testing"
	"time"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/bustest"
)

var fast = bus.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}

func TestContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return New(Config{Retry: fast}) })
}

// Entries every group has handled are dropped after the retention; the rest stay for the
// groups that still need them.
func TestTrimKeepsMemoryBounded(t *testing.T) {
	b := New(Config{Retry: fast, Retention: time.Nanosecond})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 100
	handled := make(chan struct{}, n)
	go func() {
		_ = b.Subscribe(ctx, "t", "fast", func(context.Context, bus.Message) error { handled <- struct{}{}; return nil })
	}()
	for range n {
		if err := b.Publish(ctx, bus.Message{ID: "x", Topic: "t", Key: "k"}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for range n {
		<-handled
	}
	b.mu.Lock()
	left := len(b.topics["t"].log)
	b.mu.Unlock()
	if left > 1 { // the last one may be handled without a later trim having seen it
		t.Errorf("%d entries kept after the only group handled all %d, want at most 1", left, n)
	}
}
