package memory_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/coordtest"
	"fabu.dev/libs/coord/memory"
)

func TestContract(t *testing.T) {
	coordtest.Run(t, func(*testing.T) coord.Coordinator { return memory.New() })
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeClock) Add(d time.Duration) { f.mu.Lock(); defer f.mu.Unlock(); f.now = f.now.Add(d) }

// TestExpiryByClock checks the lease boundary exactly, which only an injected clock can.
func TestExpiryByClock(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := memory.New(memory.WithClock(clock.Now))
	ctx := t.Context()
	l, err := c.Acquire(ctx, "k", "a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(time.Second); !l.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", l.ExpiresAt, want)
	}
	clock.Add(time.Second - time.Nanosecond)
	if _, err := c.Acquire(ctx, "k", "b", time.Second); !errors.Is(err, coord.ErrLocked) {
		t.Fatalf("Acquire just before expiry: %v, want ErrLocked", err)
	}
	clock.Add(time.Nanosecond)
	if _, err := c.Renew(ctx, l, time.Second); !errors.Is(err, coord.ErrNotHeld) {
		t.Fatalf("Renew at expiry: %v, want ErrNotHeld", err)
	}
	if _, err := c.Acquire(ctx, "k", "b", time.Second); err != nil {
		t.Fatalf("Acquire at expiry: %v", err)
	}
}

// TestTokensSurviveRestart checks that a new Coordinator (a restarted `fabu up`) hands out
// tokens above those of the previous one, as long as the clock moved forward.
func TestTokensSurviveRestart(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	first := memory.New(memory.WithClock(clock.Now))
	var last int64
	for range 5 { // several acquisitions in one microsecond run ahead of the clock
		l, err := first.Acquire(t.Context(), "k", "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := first.Release(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		last = l.Token
	}
	clock.Add(time.Second)
	l, err := memory.New(memory.WithClock(clock.Now)).Acquire(t.Context(), "k", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token <= last {
		t.Errorf("token after restart = %d, want > %d", l.Token, last)
	}
}
