// Package memory is the in-process coord.Coordinator: the same semantics as coord/redis
// for `fabu up`, where every service runs in one process, and for tests.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/internal/check"
)

// Coordinator keeps locks and queues in memory behind one mutex. Expired locks are
// recognised by time when they are next touched, so nothing runs in the background.
type Coordinator struct {
	now func() time.Time

	mu     sync.Mutex
	locks  map[string]held
	fences map[string]int64 // never reset, so tokens outlive every lock on the key
	queues map[string][]coord.Item
}

type held struct {
	owner   string
	token   int64
	expires time.Time
}

// Option configures a Coordinator.
type Option func(*Coordinator)

// WithClock makes the Coordinator read the time from now instead of time.Now, so a test
// can expire leases without waiting.
func WithClock(now func() time.Time) Option {
	return func(c *Coordinator) { c.now = now }
}

// New returns an empty Coordinator.
func New(opts ...Option) *Coordinator {
	c := &Coordinator{
		now:    time.Now,
		locks:  map[string]held{},
		fences: map[string]int64{},
		queues: map[string][]coord.Item{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

var _ coord.Coordinator = (*Coordinator)(nil)

// Close does nothing: there is nothing to release.
func (c *Coordinator) Close() error { return nil }

// Acquire implements coord.Locker.
func (c *Coordinator) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (coord.Lease, error) {
	if err := begin(ctx, check.Names("key", key, "owner", owner), check.TTL(ttl)); err != nil {
		return coord.Lease{}, fmt.Errorf("acquire %s: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heldLocked(key) {
		return coord.Lease{}, fmt.Errorf("acquire %s: %w", key, coord.ErrLocked)
	}
	return c.grantLocked(key, owner, ttl), nil
}

// Renew implements coord.Locker.
func (c *Coordinator) Renew(ctx context.Context, l coord.Lease, ttl time.Duration) (coord.Lease, error) {
	if err := begin(ctx, check.Lease(l), check.TTL(ttl)); err != nil {
		return coord.Lease{}, fmt.Errorf("renew %s: %w", l.Key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holdsLocked(l) {
		return coord.Lease{}, fmt.Errorf("renew %s: %w", l.Key, coord.ErrNotHeld)
	}
	l.ExpiresAt = c.now().Add(ttl)
	c.locks[l.Key] = held{owner: l.Owner, token: l.Token, expires: l.ExpiresAt}
	return l, nil
}

// Release implements coord.Locker.
func (c *Coordinator) Release(ctx context.Context, l coord.Lease) error {
	if err := begin(ctx, check.Lease(l)); err != nil {
		return fmt.Errorf("release %s: %w", l.Key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holdsLocked(l) {
		return fmt.Errorf("release %s: %w", l.Key, coord.ErrNotHeld)
	}
	delete(c.locks, l.Key)
	return nil
}

// heldLocked reports whether key is held by anyone now, forgetting an expired lock.
func (c *Coordinator) heldLocked(key string) bool {
	h, ok := c.locks[key]
	if ok && !c.now().Before(h.expires) {
		delete(c.locks, key)
		ok = false
	}
	return ok
}

// holdsLocked reports whether l's owner and token hold its key now.
func (c *Coordinator) holdsLocked(l coord.Lease) bool {
	if !c.heldLocked(l.Key) {
		return false
	}
	h := c.locks[l.Key]
	return h.owner == l.Owner && h.token == l.Token
}

// grantLocked gives the free key to owner with the key's next fencing token: at least the
// time in µs, so tokens keep increasing across a restart that forgets c.fences.
func (c *Coordinator) grantLocked(key, owner string, ttl time.Duration) coord.Lease {
	now := c.now()
	c.fences[key] = max(c.fences[key]+1, now.UnixMicro())
	l := coord.Lease{Key: key, Owner: owner, Token: c.fences[key], ExpiresAt: now.Add(ttl)}
	c.locks[key] = held{owner: owner, token: l.Token, expires: l.ExpiresAt}
	return l
}

// begin returns the first of the context's error and the validation errors.
func begin(ctx context.Context, errs ...error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
