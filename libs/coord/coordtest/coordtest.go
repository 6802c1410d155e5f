// Package coordtest is the contract suite every coord.Coordinator must pass: the Redis one
// and the in-memory one run the same tests, so `fabu up` and a distributed installation
// coordinate alike.
package coordtest

import (
	"errors"
	"testing"
	"time"

	"fabu.dev/libs/coord"
)

// Run runs the contract suite. newCoord returns a fresh, empty Coordinator for one subtest;
// subtests run in parallel, so coordinators must not share keys (give each a new prefix).
func Run(t *testing.T, newCoord func(t *testing.T) coord.Coordinator) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c coord.Coordinator)
	}{
		{"Acquire", testAcquire},
		{"AcquireContention", testContention},
		{"ExpiryFreesLock", testExpiry},
		{"TokensIncrease", testTokensIncrease},
		{"RenewExtends", testRenewExtends},
		{"RenewSetsTTL", testRenewSetsTTL},
		{"RenewRejectsStale", testRenewRejects},
		{"RenewAfterExpiry", testRenewAfterExpiry},
		{"ReleaseOwnerOnly", testRelease},
		{"MutualExclusion", testMutualExclusion},
		{"QueueOrder", testQueueOrder},
		{"QueueNotFound", testQueueNotFound},
		{"PopHead", testPopHead},
		{"PopHeadEmpty", testPopHeadEmpty},
		{"PopHeadAfterExpiry", testPopHeadAfterExpiry},
		{"PopHeadConcurrent", testPopHeadConcurrent},
		{"InvalidArguments", testInvalid},
		{"CanceledContext", testCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCoord(t)
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, c)
		})
	}
}

// patience bounds every wait for a lease to run out; leases in the suite last milliseconds.
const patience = 10 * time.Second

// eventually polls cond until it holds, failing the test after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		<-tick.C
	}
}

// waitPast returns once the wall clock is past when plus a margin for the backend's own
// clock; it is how a test lets a lease run out, which is the behaviour under test.
func waitPast(when time.Time) {
	<-time.After(time.Until(when.Add(50 * time.Millisecond)))
}

// wantErr fails the test unless err is target (or nil when target is nil).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if target == nil && err != nil {
		t.Fatalf("%s: %v, want no error", what, err)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// mustAcquire acquires key for owner or fails the test.
func mustAcquire(t *testing.T, c coord.Coordinator, key, owner string, ttl time.Duration) coord.Lease {
	t.Helper()
	l, err := c.Acquire(t.Context(), key, owner, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %q): %v", key, owner, err)
	}
	return l
}
