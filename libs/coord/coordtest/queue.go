package coordtest

import (
	"context"
	"math"
	"slices"
	"testing"

	"fabu.dev/libs/coord"
)

// step is one operation on the queue under test.
type step func(ctx context.Context, c coord.Coordinator, q string) error

func enq(id string, p int64) step {
	return func(ctx context.Context, c coord.Coordinator, q string) error { return c.Enqueue(ctx, q, id, p) }
}

func move(id, before string) step {
	return func(ctx context.Context, c coord.Coordinator, q string) error { return c.Move(ctx, q, id, before) }
}

func remove(id string) step {
	return func(ctx context.Context, c coord.Coordinator, q string) error { return c.Remove(ctx, q, id) }
}

func enqAll(p int64, ids ...string) []step {
	var s []step
	for _, id := range ids {
		s = append(s, enq(id, p))
	}
	return s
}

func items(pairs ...any) []coord.Item {
	var out []coord.Item
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, coord.Item{ID: pairs[i].(string), Priority: int64(pairs[i+1].(int))})
	}
	return out
}

func item(id string, p int64) coord.Item { return coord.Item{ID: id, Priority: p} }

func testQueueOrder(t *testing.T, c coord.Coordinator) {
	tests := []struct {
		name  string
		steps []step
		want  []coord.Item
	}{
		{"empty", nil, nil},
		{"priority then FIFO",
			[]step{enq("a", 1), enq("b", 5), enq("c", 1), enq("d", 5), enq("e", 3)},
			items("b", 5, "d", 5, "e", 3, "a", 1, "c", 1)},
		{"negative priorities",
			[]step{enq("a", 0), enq("b", -5), enq("c", -12), enq("d", -7), enq("e", 3)},
			items("e", 3, "a", 0, "b", -5, "d", -7, "c", -12)},
		{"re-enqueue raises priority",
			append(enqAll(0, "a", "b", "c"), enq("c", 10)),
			items("c", 10, "a", 0, "b", 0)},
		{"re-enqueue lowers priority",
			[]step{enq("a", 5), enq("b", 5), enq("c", 0), enq("a", 0)},
			items("b", 5, "c", 0, "a", 0)},
		{"re-enqueue with same priority keeps place",
			append(enqAll(0, "a", "b", "c"), enq("a", 0)),
			items("a", 0, "b", 0, "c", 0)},
		{"move before",
			append(enqAll(0, "a", "b", "c", "d"), move("d", "b")),
			items("a", 0, "d", 0, "b", 0, "c", 0)},
		{"move to head",
			append(enqAll(0, "a", "b", "c"), move("c", "a")),
			items("c", 0, "a", 0, "b", 0)},
		{"move to tail",
			append(enqAll(0, "a", "b", "c"), move("a", "")),
			items("b", 0, "c", 0, "a", 0)},
		{"move before itself",
			append(enqAll(0, "a", "b", "c"), move("b", "b")),
			items("a", 0, "b", 0, "c", 0)},
		{"move keeps priority across levels",
			[]step{enq("a", 9), enq("b", 1), move("b", "a")},
			items("b", 1, "a", 9)},
		{"enqueue after a manual move goes behind it",
			[]step{enq("a", 0), enq("b", 0), move("b", "a"), enq("c", 0)},
			items("b", 0, "a", 0, "c", 0)},
		{"enqueue behind a high item moved back",
			[]step{enq("a", 5), enq("b", 1), move("a", ""), enq("c", 1), enq("d", 5)},
			items("b", 1, "a", 5, "d", 5, "c", 1)},
		{"remove",
			append(enqAll(0, "a", "b", "c"), remove("b")),
			items("a", 0, "c", 0)},
		{"remove all",
			append(enqAll(0, "a", "b"), remove("b"), remove("a")),
			nil},
		{"extreme priorities stay exact",
			[]step{enq("max-1", math.MaxInt64-1), enq("min", math.MinInt64), enq("max", math.MaxInt64),
				enq("min+1", math.MinInt64+1), enq("zero", 0), enq("2^53+1", 1<<53+1), enq("2^53", 1<<53)},
			[]coord.Item{item("max", math.MaxInt64), item("max-1", math.MaxInt64-1), item("2^53+1", 1<<53+1),
				item("2^53", 1<<53), item("zero", 0), item("min+1", math.MinInt64+1), item("min", math.MinInt64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := "order/" + tt.name // one queue per case: queues must not leak into each other
			for i, s := range tt.steps {
				if err := s(t.Context(), c, q); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			wantList(t, c, q, tt.want)
		})
	}
}

func testQueueNotFound(t *testing.T, c coord.Coordinator) {
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		wantErr(t, "Enqueue", c.Enqueue(ctx, "q", id, 0), nil)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"Move unknown id", c.Move(ctx, "q", "x", "a")},
		{"Move unknown id to tail", c.Move(ctx, "q", "x", "")},
		{"Move before unknown id", c.Move(ctx, "q", "a", "x")},
		{"Move in unknown queue", c.Move(ctx, "nope", "a", "")},
		{"Remove unknown id", c.Remove(ctx, "q", "x")},
		{"Remove from unknown queue", c.Remove(ctx, "nope", "a")},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.err, coord.ErrNotFound)
	}
	wantList(t, c, "q", items("a", 0, "b", 0))
	wantErr(t, "Remove", c.Remove(ctx, "q", "a"), nil)
	wantErr(t, "second Remove", c.Remove(ctx, "q", "a"), coord.ErrNotFound)
	wantList(t, c, "q", items("b", 0))
}

// wantList fails the test unless queue q holds want, head first.
func wantList(t *testing.T, c coord.Coordinator, q string, want []coord.Item) {
	t.Helper()
	got, err := c.List(t.Context(), q)
	if err != nil {
		t.Fatalf("List(%q): %v", q, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %v, want %v", q, got, want)
	}
}
