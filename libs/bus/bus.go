// Package bus carries events between fabu's services: at-least-once delivery through
// consumer groups, with per-key order, retries and a dead-letter topic.
//
// Semantics shared by every implementation (bustest.Run checks them):
//
//   - Every message of a topic reaches exactly one subscriber of each group that subscribes
//     to the topic, at least once: a message is committed only after its handler succeeded
//     or after it was dead-lettered, so a subscriber that stops before that leaves it to
//     another subscriber of the group. Consumers deduplicate on Message.ID.
//   - A group that subscribes late still gets the messages published before it (within the
//     implementation's retention).
//   - Messages with the same non-empty Key are handled one at a time, in publication order.
//   - A handler error is retried with backoff per RetryPolicy; a Permanent error, or the
//     last failed attempt, sends the message to DeadLetterTopic(topic) with header "error"
//     holding the error text, and the message is committed.
//   - When Subscribe's context ends, the running handler is waited for (it sees the same
//     context, so it may stop early); a message that did not succeed then is neither
//     retried nor dead-lettered nor committed, and is delivered again later.
//
// Implementations: bus/kafka (Apache Kafka via segmentio/kafka-go) and bus/memory (one
// process). bus/outbox publishes messages written in a database transaction.
package bus

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Message is one event on a topic.
type Message struct {
	ID      string // event ID; consumers deduplicate on it
	Topic   string
	Key     string // partition key (a run ID); order is kept per key
	Payload []byte
	Headers map[string]string // nil when there are none
}

// Handler handles one message. An error makes the bus retry it; wrap it with Permanent
// when retrying cannot help.
type Handler func(ctx context.Context, m Message) error

// Publisher sends messages. Publish returns once the messages are stored durably by the
// bus (for Kafka: acknowledged by all in-sync replicas).
type Publisher interface {
	Publish(ctx context.Context, msgs ...Message) error
}

// Subscriber delivers messages to handlers.
type Subscriber interface {
	// Subscribe delivers every message of topic to exactly one subscriber of group, at least
	// once; it blocks until ctx ends and then returns nil. A handler error is retried with
	// backoff; after MaxAttempts (or at once for Permanent errors) the message goes to
	// "<topic>.dlq" with header "error", and the offset is committed.
	Subscribe(ctx context.Context, topic, group string, h Handler) error
}

// Bus publishes and subscribes.
type Bus interface {
	Publisher
	Subscriber
	// Close stops every subscription (after its current message) and releases the bus.
	Close() error
}

// ErrClosed is returned by a bus that has been closed.
var ErrClosed = errors.New("bus closed")

// HeaderError is the header of a dead-lettered message that holds the handler's error.
const HeaderError = "error"

// DeadLetterTopic returns the topic where messages of topic go when they cannot be handled.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// DeadLetter returns m as it is sent to the dead-letter topic after failing with err.
func DeadLetter(m Message, err error) Message {
	h := make(map[string]string, len(m.Headers)+1)
	for k, v := range m.Headers {
		h[k] = v
	}
	h[HeaderError] = err.Error()
	m.Topic, m.Headers = DeadLetterTopic(m.Topic), h
	return m
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix (a payload that does not decode, a
// reference to something that does not exist): the message is dead-lettered at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// RetryPolicy says how often and how fast a failing handler is retried.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, including the first; default 5
	Initial     time.Duration // wait after the first failure; default 100ms
	Max         time.Duration // the wait doubles up to this; default 5s
}

// DefaultRetry is the policy used where none is given.
var DefaultRetry = RetryPolicy{MaxAttempts: 5, Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// WithDefaults returns p with its zero fields taken from DefaultRetry.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetry.MaxAttempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultRetry.Initial
	}
	if p.Max <= 0 {
		p.Max = max(DefaultRetry.Max, p.Initial)
	}
	return p
}

// Delay returns how long to wait after failed attempt n (1 for the first): Initial doubled
// n-1 times, at most Max, with the upper half jittered so that consumers failing together
// do not retry in lockstep.
func (p RetryPolicy) Delay(n int) time.Duration {
	p = p.WithDefaults()
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	return half + rand.N(half+1)
}
