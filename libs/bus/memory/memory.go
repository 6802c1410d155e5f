// Package memory is a bus inside one process, for `fabu up` and for tests: the semantics of
// package bus (consumer groups, at-least-once, per-key order, retries, dead letters) without
// a broker.
//
// Each topic is a log; each group keeps its own position in it, so a group that subscribes
// late still gets everything published before, as with Kafka. Every Subscribe call is one
// worker that handles one message at a time; the workers of a group share the topic, and a
// message is held back while an earlier message with the same key is in flight in the
// group. Entries that every known group has handled are dropped once they are older than
// Config.Retention. Nothing survives the process: that is what the outbox is for.
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/internal/deliver"
)

// Config configures a Bus.
type Config struct {
	Retry bus.RetryPolicy // zero fields take bus.DefaultRetry's
	// Retention is how long a message handled by every known group stays available for a
	// group that has not subscribed yet; default 10 minutes.
	Retention time.Duration
}

// Bus is an in-process bus.Bus. The zero value is not usable; call New.
type Bus struct {
	cfg    Config
	stop   context.Context // ends when the bus is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // running subscriptions

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
}

var _ bus.Bus = (*Bus)(nil)

// New returns an empty bus.
func New(cfg Config) *Bus {
	cfg.Retry = cfg.Retry.WithDefaults()
	if cfg.Retention <= 0 {
		cfg.Retention = 10 * time.Minute
	}
	stop, cancel := context.WithCancel(context.Background())
	return &Bus{cfg: cfg, stop: stop, cancel: cancel, topics: map[string]*topic{}}
}

type entry struct {
	m  bus.Message
	at time.Time
}

type topic struct {
	base   int // offset of log[0]
	log    []entry
	groups map[string]*group
	wake   chan struct{} // closed (and replaced) whenever a worker may find new work
}

type group struct {
	low      int          // every offset below low is handled
	handled  map[int]bool // handled offsets at or above low
	inflight map[int]bool
}

// Publish appends msgs to their topics.
func (b *Bus) Publish(_ context.Context, msgs ...bus.Message) error {
	for _, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("publish message %s: no topic", m.ID)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("publish to in-memory bus: %w", bus.ErrClosed)
	}
	b.append(msgs...)
	return nil
}

// append adds msgs to the logs; b.mu is held.
func (b *Bus) append(msgs ...bus.Message) {
	now := time.Now()
	for _, m := range msgs {
		t := b.topic(m.Topic)
		t.log = append(t.log, entry{m: clone(m), at: now})
		t.broadcast()
	}
}

// Subscribe runs h on the messages of topic for group until ctx ends or the bus is closed.
func (b *Bus) Subscribe(ctx context.Context, topicName, groupName string, h bus.Handler) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("subscribe to %s: %w", topicName, bus.ErrClosed)
	}
	b.wg.Add(1)
	defer b.wg.Done()
	t := b.topic(topicName)
	g := t.group(groupName)
	b.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.stop, cancel)()
	for {
		off, m, ok := b.take(ctx, t, g)
		if !ok {
			return nil
		}
		outcome, err := deliver.Handle(ctx, b.cfg.Retry, h, m)
		b.mu.Lock()
		switch outcome {
		case deliver.Done:
			b.handled(t, g, off)
		case deliver.DeadLetter:
			b.append(bus.DeadLetter(m, err))
			b.handled(t, g, off)
		case deliver.Stopped:
			delete(g.inflight, off)
			t.broadcast()
		}
		b.mu.Unlock()
	}
}

// take waits for the next message g may handle and marks it in flight.
func (b *Bus) take(ctx context.Context, t *topic, g *group) (int, bus.Message, bool) {
	for ctx.Err() == nil {
		b.mu.Lock()
		off, ok := t.next(g)
		if ok {
			g.inflight[off] = true
			m := clone(t.log[off-t.base].m)
			b.mu.Unlock()
			return off, m, true
		}
		wake := t.wake
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, bus.Message{}, false
		case <-wake:
		}
	}
	return 0, bus.Message{}, false
}

// next finds g's first message that is neither handled nor in flight and whose key has no
// earlier message in flight.
func (t *topic) next(g *group) (int, bool) {
	var busy map[string]bool
	for off := g.low; off < t.base+len(t.log); off++ {
		if g.handled[off] {
			continue
		}
		key := t.log[off-t.base].m.Key
		if g.inflight[off] {
			if busy == nil {
				busy = map[string]bool{}
			}
			busy[key] = true
			continue
		}
		if !busy[key] {
			return off, true
		}
	}
	return 0, false
}

// handled records that g is done with off and drops what no group needs any more; b.mu is
// held.
func (b *Bus) handled(t *topic, g *group, off int) {
	delete(g.inflight, off)
	g.handled[off] = true
	for g.handled[g.low] {
		delete(g.handled, g.low)
		g.low++
	}
	t.trim(time.Now().Add(-b.cfg.Retention))
	t.broadcast()
}

// trim drops the entries before every group's position that were published before cutoff.
func (t *topic) trim(cutoff time.Time) {
	low := t.base + len(t.log)
	for _, g := range t.groups {
		low = min(low, g.low)
	}
	n := 0
	for n < low-t.base && t.log[n].at.Before(cutoff) {
		t.log[n] = entry{} // let the payload go
		n++
	}
	t.log = t.log[n:]
	t.base += n
}

func (t *topic) broadcast() {
	close(t.wake)
	t.wake = make(chan struct{})
}

func (b *Bus) topic(name string) *topic {
	t, ok := b.topics[name]
	if !ok {
		t = &topic{groups: map[string]*group{}, wake: make(chan struct{})}
		b.topics[name] = t
	}
	return t
}

func (t *topic) group(name string) *group {
	g, ok := t.groups[name]
	if !ok {
		g = &group{low: t.base, handled: map[int]bool{}, inflight: map[int]bool{}}
		t.groups[name] = g
	}
	return g
}

// Close stops every subscription after its current message; Publish and Subscribe fail
// with bus.ErrClosed afterwards.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}

// clone copies m's payload and headers, so that neither publisher nor handler can change a
// message that someone else holds.
func clone(m bus.Message) bus.Message {
	m.Payload = slices.Clone(m.Payload)
	if len(m.Headers) == 0 {
		m.Headers = nil
	} else {
		m.Headers = maps.Clone(m.Headers)
	}
	return m
}
