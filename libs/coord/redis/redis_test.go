package redis_test

import (
	"testing"
	"time"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/coord/coordtest"
	"fabu.dev/libs/coord/redis"
	"fabu.dev/libs/testenv"
)

func newCoord(t *testing.T) *redis.Coordinator {
	return redis.New(redis.Config{Client: testenv.Redis(t), Prefix: testenv.RedisPrefix(t)})
}

func TestContract(t *testing.T) {
	coordtest.Run(t, func(t *testing.T) coord.Coordinator { return newCoord(t) })
}

func TestPing(t *testing.T) {
	if err := newCoord(t).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// TestTokensSurviveDataLoss deletes every key of the Coordinator, as a Redis restarted
// without persistence would, and checks that tokens still rise above the old ones.
func TestTokensSurviveDataLoss(t *testing.T) {
	rdb, prefix := testenv.Redis(t), testenv.RedisPrefix(t)
	c := redis.New(redis.Config{Client: rdb, Prefix: prefix})
	var last int64
	for range 5 {
		l, err := c.Acquire(t.Context(), "k", "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Release(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		last = l.Token
	}
	keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys under %s = %v, %v; want the fence", prefix, keys, err)
	}
	if err := rdb.Del(t.Context(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(t.Context(), "k", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token <= last {
		t.Errorf("token after data loss = %d, want > %d", l.Token, last)
	}
}
