package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/internal/check"
)

// Acquire implements coord.Locker.
func (c *Coordinator) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (coord.Lease, error) {
	if err := errors.Join(check.Names("key", key, "owner", owner), check.TTL(ttl)); err != nil {
		return coord.Lease{}, fmt.Errorf("acquire %s: %w", key, err)
	}
	n, expires := ms(time.Now(), ttl)
	s, err := acquireScript.Run(ctx, c.rdb, c.lockKeys(key), owner, n).Text()
	if errors.Is(err, goredis.Nil) {
		return coord.Lease{}, fmt.Errorf("acquire %s: %w", key, coord.ErrLocked)
	}
	if err != nil {
		return coord.Lease{}, fmt.Errorf("acquire %s: %w", key, err)
	}
	token, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return coord.Lease{}, fmt.Errorf("acquire %s: token %q: %w", key, s, err)
	}
	return coord.Lease{Key: key, Owner: owner, Token: token, ExpiresAt: expires}, nil
}

// Renew implements coord.Locker.
func (c *Coordinator) Renew(ctx context.Context, l coord.Lease, ttl time.Duration) (coord.Lease, error) {
	if err := errors.Join(check.Lease(l), check.TTL(ttl)); err != nil {
		return coord.Lease{}, fmt.Errorf("renew %s: %w", l.Key, err)
	}
	n, expires := ms(time.Now(), ttl)
	ok, err := renewScript.Run(ctx, c.rdb, c.lockKeys(l.Key)[:1], value(l), n).Bool()
	if err != nil {
		return coord.Lease{}, fmt.Errorf("renew %s: %w", l.Key, err)
	}
	if !ok {
		return coord.Lease{}, fmt.Errorf("renew %s: %w", l.Key, coord.ErrNotHeld)
	}
	l.ExpiresAt = expires
	return l, nil
}

// Release implements coord.Locker.
func (c *Coordinator) Release(ctx context.Context, l coord.Lease) error {
	if err := check.Lease(l); err != nil {
		return fmt.Errorf("release %s: %w", l.Key, err)
	}
	ok, err := releaseScript.Run(ctx, c.rdb, c.lockKeys(l.Key)[:1], value(l)).Bool()
	if err != nil {
		return fmt.Errorf("release %s: %w", l.Key, err)
	}
	if !ok {
		return fmt.Errorf("release %s: %w", l.Key, coord.ErrNotHeld)
	}
	return nil
}

// value is what the lock key holds while l holds it. The token is the last field and a
// number, so owners containing "|" cannot collide.
func value(l coord.Lease) string {
	return l.Owner + "|" + strconv.FormatInt(l.Token, 10)
}
