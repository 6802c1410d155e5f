package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/internal/check"
)

// Enqueue implements coord.Queue.
func (c *Coordinator) Enqueue(ctx context.Context, queue, id string, priority int64) error {
	if err := begin(ctx, check.Names("queue", queue, "id", id)); err != nil {
		return fmt.Errorf("enqueue %s in %s: %w", id, queue, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.queues[queue]
	if i := index(items, id); i >= 0 {
		if items[i].Priority == priority {
			return nil
		}
		items = slices.Delete(items, i, i+1)
	}
	// Just behind the last item of at least this priority.
	at := 0
	for i := len(items) - 1; i >= 0; i-- {
		if items[i].Priority >= priority {
			at = i + 1
			break
		}
	}
	c.queues[queue] = slices.Insert(items, at, coord.Item{ID: id, Priority: priority})
	return nil
}

// Move implements coord.Queue.
func (c *Coordinator) Move(ctx context.Context, queue, id, before string) error {
	if err := begin(ctx, check.Names("queue", queue, "id", id)); err != nil {
		return fmt.Errorf("move %s in %s: %w", id, queue, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.queues[queue]
	i := index(items, id)
	if i < 0 {
		return fmt.Errorf("move %s in %s: %w", id, queue, coord.ErrNotFound)
	}
	if before != "" && index(items, before) < 0 {
		return fmt.Errorf("move %s before %s in %s: %w", id, before, queue, coord.ErrNotFound)
	}
	if before == id {
		return nil
	}
	it := items[i]
	items = slices.Delete(items, i, i+1)
	at := len(items)
	if before != "" {
		at = index(items, before)
	}
	c.queues[queue] = slices.Insert(items, at, it)
	return nil
}

// Remove implements coord.Queue.
func (c *Coordinator) Remove(ctx context.Context, queue, id string) error {
	if err := begin(ctx, check.Names("queue", queue, "id", id)); err != nil {
		return fmt.Errorf("remove %s from %s: %w", id, queue, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.queues[queue]
	i := index(items, id)
	if i < 0 {
		return fmt.Errorf("remove %s from %s: %w", id, queue, coord.ErrNotFound)
	}
	c.setLocked(queue, slices.Delete(items, i, i+1))
	return nil
}

// List implements coord.Queue.
func (c *Coordinator) List(ctx context.Context, queue string) ([]coord.Item, error) {
	if err := begin(ctx, check.Names("queue", queue)); err != nil {
		return nil, fmt.Errorf("list %s: %w", queue, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.queues[queue]), nil
}

// PopHead implements coord.Queue.
func (c *Coordinator) PopHead(ctx context.Context, queue, lockKey string, ttl time.Duration) (coord.Item, coord.Lease, error) {
	if err := begin(ctx, check.Names("queue", queue, "lock key", lockKey), check.TTL(ttl)); err != nil {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: %w", queue, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.queues[queue]
	if len(items) == 0 {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: %w", queue, coord.ErrEmpty)
	}
	if c.heldLocked(lockKey) {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s under %s: %w", queue, lockKey, coord.ErrLocked)
	}
	head := items[0]
	c.setLocked(queue, slices.Delete(items, 0, 1))
	return head, c.grantLocked(lockKey, head.ID, ttl), nil
}

// setLocked stores items as queue, dropping empty queues so they don't accumulate.
func (c *Coordinator) setLocked(queue string, items []coord.Item) {
	if len(items) == 0 {
		delete(c.queues, queue)
		return
	}
	c.queues[queue] = items
}

func index(items []coord.Item, id string) int {
	return slices.IndexFunc(items, func(it coord.Item) bool { return it.ID == id })
}
