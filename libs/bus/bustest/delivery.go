package bustest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"fabu.dev/libs/bus"
)

// testRoundTrip: a message arrives whole, its ID included; a message without headers
// arrives without headers.
func testRoundTrip(t *testing.T, b bus.Bus) {
	topic := newTopic()
	full := msg(topic, "run-1", `{"run_id":"run-1"}`)
	full.Headers = map[string]string{"trace": "abc", "source": "bustest"}
	bare := msg(topic, "run-1", `{}`)
	publish(t, b, full, bare)

	var r recorder
	subscribe(t, b, topic, "g", r.handle)
	eventually(t, "both messages to arrive", func() bool { return r.len() >= 2 })

	r.mu.Lock()
	defer r.mu.Unlock()
	if got := r.msgs[0]; !reflect.DeepEqual(got, full) {
		t.Errorf("received %s, want %s", describe(got), describe(full))
	}
	got := r.msgs[1]
	if got.ID != bare.ID || got.Topic != topic || got.Key != bare.Key || string(got.Payload) != "{}" || len(got.Headers) != 0 {
		t.Errorf("received %s, want %s", describe(got), describe(bare))
	}
}

// testGroupSharesMessages: two subscribers of one group together get every message once.
func testGroupSharesMessages(t *testing.T, b bus.Bus) {
	topic := newTopic()
	p := newProber(2)
	var r recorder
	subscribe(t, b, topic, "g", p.wrap(0, r.handle))
	subscribe(t, b, topic, "g", p.wrap(1, r.handle))
	p.await(t, b, topic)

	var msgs []bus.Message
	for i := range 40 {
		msgs = append(msgs, msg(topic, "run-"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	publish(t, b, msgs...)
	eventually(t, "every message to reach the group", func() bool { return r.hasAll(msgs) })
	for id, n := range r.counts() {
		if n != 1 {
			t.Errorf("message %s delivered %d times within one group of settled subscribers, want once", id, n)
		}
	}
}

// testGroupsAreIndependent: every group gets every message, including those published
// before it subscribed.
func testGroupsAreIndependent(t *testing.T, b bus.Bus) {
	topic := newTopic()
	var msgs []bus.Message
	for i := range 10 {
		msgs = append(msgs, msg(topic, "run-"+strconv.Itoa(i%3), strconv.Itoa(i)))
	}
	publish(t, b, msgs...)

	var r1, r2 recorder
	subscribe(t, b, topic, "g1", r1.handle)
	subscribe(t, b, topic, "g2", r2.handle)
	eventually(t, "group g1 to get every message", func() bool { return r1.hasAll(msgs) })
	eventually(t, "group g2 to get every message", func() bool { return r2.hasAll(msgs) })
}

// testPerKeyOrder: messages with one key are handled one at a time and in order, even when
// one of them fails first and is retried, and the group has two subscribers.
func testPerKeyOrder(t *testing.T, b bus.Bus) {
	topic := newTopic()
	const keys, perKey = 3, 15
	var (
		mu       sync.Mutex
		done     = map[string][]int{} // key → sequence numbers handled successfully, in order
		inflight = map[string]int{}
		failed   = map[string]bool{}
	)
	h := func(_ context.Context, m bus.Message) error {
		seq, _ := strconv.Atoi(string(m.Payload))
		mu.Lock()
		inflight[m.Key]++
		if inflight[m.Key] > 1 {
			t.Errorf("two messages of key %s handled at once", m.Key)
		}
		mu.Unlock()
		defer func() { mu.Lock(); inflight[m.Key]--; mu.Unlock() }()

		mu.Lock()
		defer mu.Unlock()
		if seq == 4 && !failed[m.Key] {
			failed[m.Key] = true
			return errors.New("transient failure of the fifth message")
		}
		done[m.Key] = append(done[m.Key], seq)
		return nil
	}
	p := newProber(2)
	subscribe(t, b, topic, "g", p.wrap(0, h))
	subscribe(t, b, topic, "g", p.wrap(1, h))
	p.await(t, b, topic)

	var msgs []bus.Message
	for i := range perKey {
		for k := range keys {
			msgs = append(msgs, msg(topic, fmt.Sprintf("run-%d", k), strconv.Itoa(i)))
		}
	}
	publish(t, b, msgs...)
	eventually(t, "every key's messages to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k := range keys {
			if len(done[fmt.Sprintf("run-%d", k)]) < perKey {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for key, seqs := range done {
		for i, seq := range seqs {
			if seq != i {
				t.Errorf("key %s handled in order %v, want 0..%d", key, seqs, perKey-1)
				break
			}
		}
	}
}
