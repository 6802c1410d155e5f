package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisHow = `fabu's tests need Redis. Start one on 127.0.0.1:6379 (Debian: apt-get install redis-server),
or point FABU_TEST_REDIS at one: "host:port" or "redis://[:password@]host:port/db".`

// Redis returns a client of the test Redis named by FABU_TEST_REDIS (default
// 127.0.0.1:6379), closed when the test ends. An unreachable Redis fails the test with how
// to get one (see Missing).
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	addr := Getenv("FABU_TEST_REDIS", "127.0.0.1:6379")
	opts := &redis.UniversalOptions{Addrs: []string{addr}}
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			t.Fatalf("FABU_TEST_REDIS=%q: %v", addr, err)
		}
		opts = &redis.UniversalOptions{Addrs: []string{o.Addr}, Username: o.Username, Password: o.Password, DB: o.DB}
	}
	c := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		Missing(t, "Redis at "+addr, redisHow, err)
	}
	return c
}

// RedisPrefix returns a fresh key prefix ("fabutest:<random>:") that isolates a test's keys
// from every other test on the same Redis; the keys under it are deleted when the test ends.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	prefix := "fabutest:" + hex.EncodeToString(b) + ":"
	c := Redis(t) // its Close is registered first, so it runs after the deletion below
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up Redis keys %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("clean up Redis keys %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}
