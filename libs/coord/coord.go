// Package coord is fabu's coordination between processes: locks held under a lease with a
// fencing token, and priority queues whose head is handed out together with a lock.
//
// A Lease is only a promise until ExpiresAt; a holder renews it while it works, and every
// write the holder makes elsewhere carries Lease.Token, so the writer can refuse a holder
// whose lease expired and was taken over (its token is lower than the newest one). Tokens
// strictly increase per key across every acquisition — after a release, after an expiry —
// and are never reset. A token is also at least the Unix time of its acquisition in
// microseconds, so tokens keep increasing when the backend loses its counters (a restarted
// process, a Redis without persistence) and tokens already written to the database stay
// lower than every new one.
//
// Semantics shared by every implementation (coordtest.Run checks them):
//
//   - Acquire fails with ErrLocked whenever the key is held, even by the same owner: an
//     owner that wants more time renews, so a second Acquire by the same owner is a bug in
//     the caller that must not silently mint a new token.
//   - Renew and Release succeed only for the exact owner and token still holding the key.
//   - A queue is ordered head first. Enqueue puts a new id just behind the last item whose
//     priority is at least its own, which is "higher priority first, FIFO within a
//     priority" as long as no one has moved items by hand, and respects manual moves ahead
//     of it otherwise. Re-enqueuing an id with its current priority keeps its place;
//     with another priority it is placed anew by the same rule.
//   - Move keeps an item's priority; it only changes its place.
//   - PopHead reports ErrEmpty before ErrLocked: an empty queue is empty whoever holds the
//     lock.
//
// Implementations: coord/redis (shared by all processes) and coord/memory (one process).
package coord

import (
	"context"
	"time"

	"fabu.dev/libs/apperr"
)

// Lease is the holding of a lock by one owner until ExpiresAt.
type Lease struct {
	Key   string
	Owner string
	// Token is the fencing token: strictly increasing per key across acquisitions.
	Token int64
	// ExpiresAt is when the lease ends unless renewed. It is computed from the time the
	// request started, so the lock never ends earlier than this on the server.
	ExpiresAt time.Time
}

// Locker hands out leases on named keys.
type Locker interface {
	// Acquire takes key for owner for ttl; ErrLocked when the key is held by anyone.
	Acquire(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error)
	// Renew extends l to ttl from now; ErrNotHeld unless l's owner and token still hold it.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release frees l's key; ErrNotHeld unless l's owner and token still hold it.
	Release(ctx context.Context, l Lease) error
}

// Item is one entry of a queue.
type Item struct {
	ID       string
	Priority int64
}

// Queue is a set of named priority queues of unique ids.
type Queue interface {
	// Enqueue adds id to queue: higher priority first, FIFO within a priority;
	// re-enqueue updates the priority.
	Enqueue(ctx context.Context, queue, id string, priority int64) error
	// Move puts id just before `before` ("" = to the tail); ErrNotFound when id or before
	// is not in the queue.
	Move(ctx context.Context, queue, id string, before string) error
	// Remove takes id out of queue; ErrNotFound when it is not there.
	Remove(ctx context.Context, queue, id string) error
	// List returns the items of queue, head first.
	List(ctx context.Context, queue string) ([]Item, error)
	// PopHead atomically takes the head of queue and acquires lockKey for owner (the head's
	// ID) only if lockKey is free; ErrEmpty / ErrLocked otherwise.
	PopHead(ctx context.Context, queue, lockKey string, ttl time.Duration) (Item, Lease, error)
}

// Coordinator is a Locker and a Queue on one backend.
type Coordinator interface {
	Locker
	Queue
	Close() error
}

// The errors of coord. They are application errors, so a service that passes one on
// answers with the matching HTTP status; check them with errors.Is.
var (
	// ErrLocked: the key is held.
	ErrLocked error = apperr.Conflict("coord: locked")
	// ErrNotHeld: the lease no longer holds its key (released, expired or taken over).
	ErrNotHeld error = apperr.Conflict("coord: lease not held")
	// ErrEmpty: the queue has no items.
	ErrEmpty error = apperr.NotFound("coord: queue empty")
	// ErrNotFound: the id (or the `before` id of Move) is not in the queue.
	ErrNotFound error = apperr.NotFound("coord: not in queue")
	// ErrInvalid: an empty key, owner, queue or id, or a ttl under a millisecond.
	ErrInvalid error = apperr.Invalid("coord: invalid argument")
)

// MinTTL is the shortest lease: Redis counts expiry in milliseconds.
const MinTTL = time.Millisecond
