package coordtest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/coord"
)

func testPopHead(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	wantErr(t, "Enqueue", c.Enqueue(ctx, "q", "low", 1), nil)
	wantErr(t, "Enqueue", c.Enqueue(ctx, "q", "high", 7), nil)
	busy := mustAcquire(t, c, "lk", "someone", time.Minute)

	_, _, err := c.PopHead(ctx, "q", "lk", time.Minute)
	wantErr(t, "PopHead while locked", err, coord.ErrLocked)
	wantList(t, c, "q", items("high", 7, "low", 1))

	wantErr(t, "Release", c.Release(ctx, busy), nil)
	before := time.Now()
	it, l, err := c.PopHead(ctx, "q", "lk", time.Minute)
	wantErr(t, "PopHead", err, nil)
	if it != (coord.Item{ID: "high", Priority: 7}) {
		t.Errorf("PopHead item = %+v, want high/7", it)
	}
	if l.Key != "lk" || l.Owner != "high" || l.Token <= busy.Token || l.ExpiresAt.Before(before.Add(time.Minute)) {
		t.Errorf("PopHead lease = %+v, want key lk, owner high, token > %d, expiry ≥ %v", l, busy.Token, before.Add(time.Minute))
	}
	wantList(t, c, "q", items("low", 1))

	_, err = c.Acquire(ctx, "lk", "other", time.Minute)
	wantErr(t, "Acquire the popped lock", err, coord.ErrLocked)
	_, _, err = c.PopHead(ctx, "q", "lk", time.Minute)
	wantErr(t, "PopHead while the head holds the lock", err, coord.ErrLocked)
	l, err = c.Renew(ctx, l, time.Minute)
	wantErr(t, "Renew popped lease", err, nil)
	wantErr(t, "Release popped lease", c.Release(ctx, l), nil)
}

func testPopHeadEmpty(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	_, _, err := c.PopHead(ctx, "q", "lk", time.Minute)
	wantErr(t, "PopHead of empty queue", err, coord.ErrEmpty)
	mustAcquire(t, c, "lk", "someone", time.Minute)
	_, _, err = c.PopHead(ctx, "q", "lk", time.Minute)
	wantErr(t, "PopHead of empty queue while locked", err, coord.ErrEmpty)
	wantErr(t, "Enqueue", c.Enqueue(ctx, "q", "a", 0), nil)
	wantErr(t, "Remove", c.Remove(ctx, "q", "a"), nil)
	_, _, err = c.PopHead(ctx, "q", "free", time.Minute)
	wantErr(t, "PopHead of emptied queue", err, coord.ErrEmpty)
}

func testPopHeadAfterExpiry(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	old := mustAcquire(t, c, "lk", "crashed", 20*time.Millisecond)
	wantErr(t, "Enqueue", c.Enqueue(ctx, "q", "a", 0), nil)
	var l coord.Lease
	eventually(t, "PopHead after the holder's lease ran out", func() bool {
		var err error
		_, l, err = c.PopHead(ctx, "q", "lk", time.Minute)
		if err != nil && !errors.Is(err, coord.ErrLocked) {
			t.Fatalf("PopHead: %v", err)
		}
		return err == nil
	})
	if l.Owner != "a" || l.Token <= old.Token {
		t.Errorf("lease %+v, want owner a and token > %d", l, old.Token)
	}
}

// testPopHeadConcurrent has workers drain a queue, under one shared lock and under a lock
// each; every item must be handed out exactly once.
func testPopHeadConcurrent(t *testing.T, c coord.Coordinator) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared lock %v", shared), func(t *testing.T) {
			const n, workers = 40, 6
			q := fmt.Sprintf("q-%v", shared)
			for i := range n {
				wantErr(t, "Enqueue", c.Enqueue(t.Context(), q, fmt.Sprintf("run%02d", i), int64(i%3)), nil)
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for w := range workers {
				lockKey := fmt.Sprintf("%s-lock-%d", q, w)
				if shared {
					lockKey = q + "-lock"
				}
				wg.Go(func() {
					for {
						it, l, err := c.PopHead(t.Context(), q, lockKey, time.Minute)
						switch {
						case errors.Is(err, coord.ErrEmpty):
							return
						case errors.Is(err, coord.ErrLocked):
							continue
						case err != nil:
							t.Errorf("PopHead: %v", err)
							return
						}
						mu.Lock()
						seen[it.ID]++
						mu.Unlock()
						if err := c.Release(t.Context(), l); err != nil {
							t.Errorf("Release: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			if len(seen) != n {
				t.Errorf("%d distinct items handed out, want %d", len(seen), n)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("%s handed out %d times", id, k)
				}
			}
		})
	}
}
