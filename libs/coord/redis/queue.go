package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/internal/check"
)

// Enqueue implements coord.Queue.
func (c *Coordinator) Enqueue(ctx context.Context, queue, id string, priority int64) error {
	if err := check.Names("queue", queue, "id", id); err != nil {
		return fmt.Errorf("enqueue %s in %s: %w", id, queue, err)
	}
	prio := strconv.FormatInt(priority, 10)
	if err := enqueueScript.Run(ctx, c.rdb, c.queueKeys(queue), id, prio).Err(); err != nil {
		return fmt.Errorf("enqueue %s in %s: %w", id, queue, err)
	}
	return nil
}

// Move implements coord.Queue.
func (c *Coordinator) Move(ctx context.Context, queue, id, before string) error {
	if err := check.Names("queue", queue, "id", id); err != nil {
		return fmt.Errorf("move %s in %s: %w", id, queue, err)
	}
	res, err := moveScript.Run(ctx, c.rdb, c.queueKeys(queue), id, before).Int()
	switch {
	case err != nil:
		return fmt.Errorf("move %s in %s: %w", id, queue, err)
	case res == 1:
		return fmt.Errorf("move %s in %s: %w", id, queue, coord.ErrNotFound)
	case res == 2:
		return fmt.Errorf("move %s before %s in %s: %w", id, before, queue, coord.ErrNotFound)
	}
	return nil
}

// Remove implements coord.Queue.
func (c *Coordinator) Remove(ctx context.Context, queue, id string) error {
	if err := check.Names("queue", queue, "id", id); err != nil {
		return fmt.Errorf("remove %s from %s: %w", id, queue, err)
	}
	ok, err := removeScript.Run(ctx, c.rdb, c.queueKeys(queue), id).Bool()
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", id, queue, err)
	}
	if !ok {
		return fmt.Errorf("remove %s from %s: %w", id, queue, coord.ErrNotFound)
	}
	return nil
}

// List implements coord.Queue.
func (c *Coordinator) List(ctx context.Context, queue string) ([]coord.Item, error) {
	if err := check.Names("queue", queue); err != nil {
		return nil, fmt.Errorf("list %s: %w", queue, err)
	}
	flat, err := listScript.Run(ctx, c.rdb, c.queueKeys(queue)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", queue, err)
	}
	items := make([]coord.Item, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		p, err := strconv.ParseInt(flat[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list %s: priority of %s: %w", queue, flat[i], err)
		}
		items = append(items, coord.Item{ID: flat[i], Priority: p})
	}
	return items, nil
}

// PopHead implements coord.Queue.
func (c *Coordinator) PopHead(ctx context.Context, queue, lockKey string, ttl time.Duration) (coord.Item, coord.Lease, error) {
	if err := errors.Join(check.Names("queue", queue, "lock key", lockKey), check.TTL(ttl)); err != nil {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: %w", queue, err)
	}
	n, expires := ms(time.Now(), ttl)
	keys := append(c.queueKeys(queue), c.lockKeys(lockKey)...)
	res, err := popHeadScript.Run(ctx, c.rdb, keys, n).StringSlice()
	if err != nil {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: %w", queue, err)
	}
	switch {
	case res[0] == "empty":
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: %w", queue, coord.ErrEmpty)
	case res[0] == "locked":
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s under %s: %w", queue, lockKey, coord.ErrLocked)
	case len(res) != 4:
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: unexpected reply %q", queue, res)
	}
	prio, err := strconv.ParseInt(res[2], 10, 64)
	if err != nil {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: priority %q: %w", queue, res[2], err)
	}
	token, err := strconv.ParseInt(res[3], 10, 64)
	if err != nil {
		return coord.Item{}, coord.Lease{}, fmt.Errorf("pop head of %s: token %q: %w", queue, res[3], err)
	}
	item := coord.Item{ID: res[1], Priority: prio}
	return item, coord.Lease{Key: lockKey, Owner: item.ID, Token: token, ExpiresAt: expires}, nil
}
