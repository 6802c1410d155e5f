// Package bustest is the contract suite of package bus: Run checks an implementation
// against the semantics documented there. Every outcome is awaited by polling with a
// deadline; nothing sleeps.
package bustest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/ids"
)

// Deadline bounds every wait of the suite.
const Deadline = 30 * time.Second

// Run runs the contract suite. newBus returns a fresh bus whose Close is left to the test's
// cleanup (Run closes it too, so Close must be idempotent); a fast retry policy (a few
// milliseconds) keeps the suite quick. Subtests run in parallel, each on its own bus and
// topics.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b bus.Bus)
	}{
		{"RoundTrip", testRoundTrip},
		{"GroupSharesMessages", testGroupSharesMessages},
		{"GroupsAreIndependent", testGroupsAreIndependent},
		{"PerKeyOrder", testPerKeyOrder},
		{"RetryAndDeadLetter", testRetryAndDeadLetter},
		{"RedeliveryAfterStop", testRedeliveryAfterStop},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBus(t)
			t.Cleanup(func() { _ = b.Close() })
			tt.fn(t, b)
		})
	}
}

// newTopic returns a topic name no other test uses.
func newTopic() string { return "bustest." + ids.New() }

// msg returns a message on topic with a fresh ID.
func msg(topic, key, payload string) bus.Message {
	return bus.Message{ID: ids.New(), Topic: topic, Key: key, Payload: []byte(payload)}
}

// publish publishes msgs or fails the test.
func publish(t *testing.T, b bus.Bus, msgs ...bus.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publish %d messages: %v", len(msgs), err)
	}
}

// subscribe starts b.Subscribe in the background. The returned stop ends it and waits for
// it to return, failing the test unless it returned nil; the test's cleanup stops it too.
// Subscribe returning before it is stopped fails the test, since it must block.
func subscribe(t *testing.T, b bus.Bus, topic, group string, h bus.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stopped atomic.Bool
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(ctx, topic, group, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopped.Store(true)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Subscribe(%s, %s) returned %v after its context ended, want nil", topic, group, err)
				}
			case <-time.After(Deadline):
				t.Errorf("Subscribe(%s, %s) still running %v after its context ended", topic, group, Deadline)
			}
		})
	}
	t.Cleanup(stop)
	go func() {
		// Report an early return as soon as it happens, not only at stop.
		select {
		case err := <-done:
			if !stopped.Load() {
				t.Errorf("Subscribe(%s, %s) returned %v before its context ended", topic, group, err)
			}
			done <- err
		case <-ctx.Done():
		}
	}()
	return stop
}

// eventually polls cond until it holds, failing the test with what after Deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Deadline, what)
		}
		<-tick.C
	}
}

// headerProbe marks the messages that probe whether subscribers are ready.
const headerProbe = "bustest-probe"

// prober lets handlers report probe messages, so that a test can wait until every
// subscriber of a group takes part (for Kafka: holds partitions) before it publishes.
type prober struct {
	seen []atomic.Bool
}

func newProber(subscribers int) *prober { return &prober{seen: make([]atomic.Bool, subscribers)} }

// wrap returns h for subscriber i, handling probes itself.
func (p *prober) wrap(i int, h bus.Handler) bus.Handler {
	return func(ctx context.Context, m bus.Message) error {
		if m.Headers[headerProbe] != "" {
			p.seen[i].Store(true)
			return nil
		}
		return h(ctx, m)
	}
}

// await publishes probes with ever new keys (spreading them over partitions) until every
// subscriber has handled one.
func (p *prober) await(t *testing.T, b bus.Bus, topic string) {
	t.Helper()
	n := 0
	eventually(t, "every subscriber of the group to receive a probe message", func() bool {
		for i := range p.seen {
			if !p.seen[i].Load() {
				n++
				m := msg(topic, "probe-"+strconv.Itoa(n), "probe")
				m.Headers = map[string]string{headerProbe: "1"}
				publish(t, b, m)
				return false
			}
		}
		return true
	})
}

// recorder collects the messages handlers receive.
type recorder struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (r *recorder) handle(_ context.Context, m bus.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

// counts returns how often each message ID was received.
func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := map[string]int{}
	for _, m := range r.msgs {
		c[m.ID]++
	}
	return c
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// hasAll reports whether every one of msgs was received.
func (r *recorder) hasAll(msgs []bus.Message) bool {
	c := r.counts()
	for _, m := range msgs {
		if c[m.ID] == 0 {
			return false
		}
	}
	return true
}

func describe(m bus.Message) string {
	return fmt.Sprintf("{ID:%s Topic:%s Key:%s Payload:%q Headers:%v}", m.ID, m.Topic, m.Key, m.Payload, m.Headers)
}
