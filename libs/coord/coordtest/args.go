package coordtest

import (
	"context"
	"testing"
	"time"

	"fabu.dev/libs/coord"
)

// calls are one of each operation, with arguments that are valid unless a test changes them.
func calls(c coord.Coordinator, key, owner, queue, id string, ttl time.Duration) map[string]func(ctx context.Context) error {
	l := coord.Lease{Key: key, Owner: owner, Token: 1}
	return map[string]func(ctx context.Context) error{
		"Acquire": func(ctx context.Context) error { _, err := c.Acquire(ctx, key, owner, ttl); return err },
		"Renew":   func(ctx context.Context) error { _, err := c.Renew(ctx, l, ttl); return err },
		"Release": func(ctx context.Context) error { return c.Release(ctx, l) },
		"Enqueue": func(ctx context.Context) error { return c.Enqueue(ctx, queue, id, 0) },
		"Move":    func(ctx context.Context) error { return c.Move(ctx, queue, id, "") },
		"Remove":  func(ctx context.Context) error { return c.Remove(ctx, queue, id) },
		"List":    func(ctx context.Context) error { _, err := c.List(ctx, queue); return err },
		"PopHead": func(ctx context.Context) error { _, _, err := c.PopHead(ctx, queue, key, ttl); return err },
	}
}

func testInvalid(t *testing.T, c coord.Coordinator) {
	tests := []struct {
		name              string
		key, owner, q, id string
		ttl               time.Duration
		invalid           []string // the operations that must refuse these arguments
	}{
		{"empty key", "", "o", "q", "i", time.Minute, []string{"Acquire", "Renew", "Release", "PopHead"}},
		{"empty owner", "k", "", "q", "i", time.Minute, []string{"Acquire", "Renew", "Release"}},
		{"empty queue", "k", "o", "", "i", time.Minute, []string{"Enqueue", "Move", "Remove", "List", "PopHead"}},
		{"empty id", "k", "o", "q", "", time.Minute, []string{"Enqueue", "Move", "Remove"}},
		{"zero ttl", "k", "o", "q", "i", 0, []string{"Acquire", "Renew", "PopHead"}},
		{"sub-millisecond ttl", "k", "o", "q", "i", time.Microsecond, []string{"Acquire", "Renew", "PopHead"}},
		{"negative ttl", "k", "o", "q", "i", -time.Second, []string{"Acquire", "Renew", "PopHead"}},
	}
	for _, tt := range tests {
		ops := calls(c, tt.key, tt.owner, tt.q, tt.id, tt.ttl)
		for _, name := range tt.invalid {
			wantErr(t, tt.name+": "+name, ops[name](t.Context()), coord.ErrInvalid)
		}
	}
}

func testCanceled(t *testing.T, c coord.Coordinator) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, op := range calls(c, "k", "o", "q", "i", time.Minute) {
		wantErr(t, name+" with a canceled context", op(ctx), context.Canceled)
	}
}
