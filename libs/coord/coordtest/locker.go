package coordtest

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fabu.dev/libs/coord"
)

func testAcquire(t *testing.T, c coord.Coordinator) {
	const ttl = time.Minute
	before := time.Now()
	l := mustAcquire(t, c, "k", "a", ttl)
	after := time.Now()
	if l.Key != "k" || l.Owner != "a" {
		t.Errorf("lease key, owner = %q, %q; want k, a", l.Key, l.Owner)
	}
	if l.Token <= 0 {
		t.Errorf("token = %d, want > 0", l.Token)
	}
	if l.ExpiresAt.Before(before.Add(ttl)) || l.ExpiresAt.After(after.Add(ttl)) {
		t.Errorf("ExpiresAt = %v, want between %v and %v", l.ExpiresAt, before.Add(ttl), after.Add(ttl))
	}
}

func testContention(t *testing.T, c coord.Coordinator) {
	mustAcquire(t, c, "k", "a", time.Minute)
	tests := []struct {
		name, key, owner string
		want             error
	}{
		{"other owner", "k", "b", coord.ErrLocked},
		{"same owner again", "k", "a", coord.ErrLocked},
		{"other key", "k2", "b", nil},
	}
	for _, tt := range tests {
		_, err := c.Acquire(t.Context(), tt.key, tt.owner, time.Minute)
		wantErr(t, tt.name, err, tt.want)
	}
}

func testExpiry(t *testing.T, c coord.Coordinator) {
	old := mustAcquire(t, c, "k", "a", 30*time.Millisecond)
	var cur coord.Lease
	eventually(t, "b acquires after a's lease expired", func() bool {
		l, err := c.Acquire(t.Context(), "k", "b", time.Minute)
		if err != nil && !errors.Is(err, coord.ErrLocked) {
			t.Fatalf("Acquire: %v", err)
		}
		cur = l
		return err == nil
	})
	if cur.Token <= old.Token {
		t.Errorf("token after expiry = %d, want > %d", cur.Token, old.Token)
	}
	// The stale holder can neither extend nor free the new holder's lock.
	_, err := c.Renew(t.Context(), old, time.Minute)
	wantErr(t, "stale Renew", err, coord.ErrNotHeld)
	wantErr(t, "stale Release", c.Release(t.Context(), old), coord.ErrNotHeld)
	_, err = c.Acquire(t.Context(), "k", "c", time.Minute)
	wantErr(t, "Acquire while b holds", err, coord.ErrLocked)
}

func testTokensIncrease(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	var tokens []int64
	// Free by Release.
	l := mustAcquire(t, c, "k", "a", time.Minute)
	tokens = append(tokens, l.Token)
	wantErr(t, "Release", c.Release(ctx, l), nil)
	// Free by expiry.
	l = mustAcquire(t, c, "k", "a", 20*time.Millisecond)
	tokens = append(tokens, l.Token)
	eventually(t, "reacquire after expiry", func() bool {
		var err error
		l, err = c.Acquire(ctx, "k", "b", time.Minute)
		return err == nil
	})
	tokens = append(tokens, l.Token)
	wantErr(t, "Release", c.Release(ctx, l), nil)
	// By PopHead.
	wantErr(t, "Enqueue", c.Enqueue(ctx, "q", "run1", 0), nil)
	_, l, err := c.PopHead(ctx, "q", "k", time.Minute)
	wantErr(t, "PopHead", err, nil)
	tokens = append(tokens, l.Token)
	wantErr(t, "Release", c.Release(ctx, l), nil)
	tokens = append(tokens, mustAcquire(t, c, "k", "a", time.Minute).Token)
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("tokens %v do not strictly increase at %d", tokens, i)
		}
	}
}

func testRenewExtends(t *testing.T, c coord.Coordinator) {
	l := mustAcquire(t, c, "k", "a", 100*time.Millisecond)
	r, err := c.Renew(t.Context(), l, time.Hour)
	wantErr(t, "Renew", err, nil)
	if r.Key != l.Key || r.Owner != l.Owner || r.Token != l.Token {
		t.Errorf("renewed lease %+v, want key, owner and token of %+v", r, l)
	}
	if !r.ExpiresAt.After(l.ExpiresAt) {
		t.Errorf("renewed ExpiresAt %v, want after %v", r.ExpiresAt, l.ExpiresAt)
	}
	waitPast(l.ExpiresAt)
	_, err = c.Acquire(t.Context(), "k", "b", time.Minute)
	wantErr(t, "Acquire after the first lease would have ended", err, coord.ErrLocked)
	wantErr(t, "Release renewed lease", c.Release(t.Context(), r), nil)
}

func testRenewSetsTTL(t *testing.T, c coord.Coordinator) {
	l := mustAcquire(t, c, "k", "a", time.Hour)
	_, err := c.Renew(t.Context(), l, 20*time.Millisecond)
	wantErr(t, "Renew", err, nil)
	eventually(t, "b acquires after the shortened lease", func() bool {
		_, err := c.Acquire(t.Context(), "k", "b", time.Minute)
		return err == nil
	})
}

func testRenewRejects(t *testing.T, c coord.Coordinator) {
	l := mustAcquire(t, c, "k", "a", time.Minute)
	other := mustAcquire(t, c, "k2", "a", time.Minute)
	tests := []struct {
		name  string
		lease coord.Lease
	}{
		{"wrong owner", coord.Lease{Key: "k", Owner: "b", Token: l.Token}},
		{"older token", coord.Lease{Key: "k", Owner: "a", Token: l.Token - 1}},
		{"newer token", coord.Lease{Key: "k", Owner: "a", Token: l.Token + 1}},
		{"token of another key", coord.Lease{Key: "k", Owner: "a", Token: other.Token}},
		{"unlocked key", coord.Lease{Key: "free", Owner: "a", Token: l.Token}},
	}
	for _, tt := range tests {
		_, err := c.Renew(t.Context(), tt.lease, time.Minute)
		wantErr(t, tt.name, err, coord.ErrNotHeld)
	}
	_, err := c.Renew(t.Context(), l, time.Minute)
	wantErr(t, "Renew by the holder", err, nil)
}

func testRenewAfterExpiry(t *testing.T, c coord.Coordinator) {
	l := mustAcquire(t, c, "k", "a", 20*time.Millisecond)
	waitPast(l.ExpiresAt)
	_, err := c.Renew(t.Context(), l, time.Minute)
	wantErr(t, "Renew after expiry", err, coord.ErrNotHeld)
	wantErr(t, "Release after expiry", c.Release(t.Context(), l), coord.ErrNotHeld)
}

func testRelease(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	l := mustAcquire(t, c, "k", "a", time.Minute)
	for _, bad := range []coord.Lease{
		{Key: "k", Owner: "b", Token: l.Token},
		{Key: "k", Owner: "a", Token: l.Token - 1},
		{Key: "k", Owner: "a", Token: l.Token + 1},
	} {
		wantErr(t, fmt.Sprintf("Release(%+v)", bad), c.Release(ctx, bad), coord.ErrNotHeld)
		_, err := c.Acquire(ctx, "k", "b", time.Minute)
		wantErr(t, "Acquire after a refused Release", err, coord.ErrLocked)
	}
	wantErr(t, "Release by the holder", c.Release(ctx, l), nil)
	wantErr(t, "second Release", c.Release(ctx, l), coord.ErrNotHeld)
	mustAcquire(t, c, "k", "b", time.Minute)
}

// testMutualExclusion has workers contend for one key; a counter of holders inside the
// critical section must never exceed one, and tokens must rise in the order of holding.
func testMutualExclusion(t *testing.T, c coord.Coordinator) {
	const workers, rounds = 8, 15
	var inside, total atomic.Int64
	var last atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("w%d", w)
			for done := 0; done < rounds; {
				l, err := c.Acquire(t.Context(), "k", owner, time.Minute)
				if errors.Is(err, coord.ErrLocked) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				if prev := last.Swap(l.Token); l.Token <= prev {
					t.Errorf("token %d after %d", l.Token, prev)
				}
				total.Add(1)
				inside.Add(-1)
				if err := c.Release(t.Context(), l); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	if got := total.Load(); got != workers*rounds {
		t.Errorf("%d critical sections, want %d", got, workers*rounds)
	}
}
