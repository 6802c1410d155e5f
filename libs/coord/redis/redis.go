// Package redis is the coord.Coordinator shared by all of fabu's processes, on Redis.
//
// Every operation is one Lua script, so it is atomic on the server. The layout under
// Config.Prefix:
//
//	lock:<key>        "<owner>|<token>" with the lease as its expiry (PX)
//	fence:<key>       the last fencing token handed out for key; never deleted
//	queue:<name>      a list of ids, head first
//	queue-prio:<name> a hash from id to priority (decimal)
//
// A queue is a list rather than a sorted set because Move places items anywhere; a list
// has LINSERT for that, and priorities kept as decimal strings stay exact for any int64,
// where sorted-set scores (float64) would not.
//
// A script touches a queue's keys and a lock's keys together (PopHead), so the Coordinator
// needs a single Redis server (or a Sentinel-managed primary), not Redis Cluster.
//
// A fencing token is at least the server's Unix time in microseconds, so tokens keep
// increasing even if Redis loses its data; run Redis with its clock kept by NTP.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"fabu.dev/libs/coord"
)

// Config says which Redis to use.
type Config struct {
	// Client is the connection; the caller owns it and closes it after the Coordinator.
	Client goredis.UniversalClient
	// Prefix is put before every key, e.g. "fabu:", so several installations (or tests)
	// can share one Redis.
	Prefix string
}

// Validate reports a Config that New cannot use.
func (c Config) Validate() error {
	if c.Client == nil {
		return errors.New("coord/redis: no client")
	}
	return nil
}

// Coordinator is a coord.Coordinator on Redis.
type Coordinator struct {
	rdb    goredis.UniversalClient
	prefix string
}

var _ coord.Coordinator = (*Coordinator)(nil)

// New returns a Coordinator on cfg.Client. It panics when cfg does not Validate, which is a
// wiring mistake.
func New(cfg Config) *Coordinator {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Coordinator{rdb: cfg.Client, prefix: cfg.Prefix}
}

// Ping checks that Redis answers, for readiness probes.
func (c *Coordinator) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("coord/redis: ping: %w", err)
	}
	return nil
}

// Close does nothing: the client belongs to the caller.
func (c *Coordinator) Close() error { return nil }

func (c *Coordinator) lockKeys(key string) []string {
	return []string{c.prefix + "lock:" + key, c.prefix + "fence:" + key}
}

func (c *Coordinator) queueKeys(queue string) []string {
	return []string{c.prefix + "queue:" + queue, c.prefix + "queue-prio:" + queue}
}

// ms converts a ttl to the milliseconds Redis counts in, and the expiry it gives a lease
// whose request started at start.
func ms(start time.Time, ttl time.Duration) (int64, time.Time) {
	n := ttl.Milliseconds()
	return n, start.Add(time.Duration(n) * time.Millisecond)
}
