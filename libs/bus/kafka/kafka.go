// Package kafka is the production bus: Apache Kafka through segmentio/kafka-go.
//
// Publishing goes through one kafka.Writer that waits for all in-sync replicas and places
// messages by a hash of their key, so a key's messages share a partition and keep their
// order. The message ID travels in header "fabu-id". Every Subscribe call is a
// kafka.Reader in the group; it fetches, runs the handler with retries (package bus), and
// commits only after success or after dead-lettering, so a reader that stops early leaves
// the message to the group.
//
// Topics are created on first use (with their dead-letter twins) when they are missing,
// with Config.Partitions partitions; EnsureTopics creates them up front.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"fabu.dev/libs/bus"
)

// HeaderID is the Kafka header that carries bus.Message.ID.
const HeaderID = "fabu-id"

// Config configures a Bus.
type Config struct {
	Brokers    []string        // bootstrap addresses, host:port
	ClientID   string          // names this process to the brokers; default "fabu"
	Retry      bus.RetryPolicy // zero fields take bus.DefaultRetry's
	Partitions int             // partitions of topics the bus creates; default 6
	// ReplicationFactor of topics the bus creates; default: the number of brokers, at most 3.
	ReplicationFactor int
	// SessionTimeout is how long the group waits for a silent reader before it hands the
	// reader's partitions to others; default 10s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a reader tells the group it is alive, and so how soon
	// it notices a rebalance; default 1s.
	HeartbeatInterval time.Duration
	Logger            *slog.Logger // default slog.Default()
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka bus: no brokers configured")
	}
	if c.Partitions < 0 || c.ReplicationFactor < 0 {
		return fmt.Errorf("kafka bus: partitions (%d) and replication factor (%d) must not be negative", c.Partitions, c.ReplicationFactor)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "fabu"
	}
	c.Retry = c.Retry.WithDefaults()
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Bus is a bus.Bus on Kafka.
type Bus struct {
	cfg    Config
	client *kafka.Client
	writer *kafka.Writer
	stop   context.Context // ends when the bus is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // running subscriptions

	mu     sync.Mutex
	closed bool
	known  map[string]bool // topics known to exist
}

var _ bus.Bus = (*Bus)(nil)

// New returns a bus on the brokers of cfg. It does not connect until used.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	transport := &kafka.Transport{ClientID: cfg.ClientID}
	addr := kafka.TCP(cfg.Brokers...)
	stop, cancel := context.WithCancel(context.Background())
	return &Bus{
		cfg:    cfg,
		client: &kafka.Client{Addr: addr, Transport: transport},
		writer: &kafka.Writer{
			Addr:         addr,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond, // Publish is synchronous; don't linger
			Transport:    transport,
		},
		stop:   stop,
		cancel: cancel,
		known:  map[string]bool{},
	}, nil
}

// Publish writes msgs and returns once all in-sync replicas have them.
func (b *Bus) Publish(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("publish to kafka: %w", bus.ErrClosed)
	}
	return b.write(ctx, msgs)
}

func (b *Bus) write(ctx context.Context, msgs []bus.Message) error {
	topics := make([]string, 0, 1)
	kms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("publish message %s: no topic", m.ID)
		}
		topics = append(topics, m.Topic)
		kms[i] = toKafka(m)
	}
	if err := b.ensure(ctx, topics...); err != nil {
		return err
	}
	if err := b.writer.WriteMessages(ctx, kms...); err != nil {
		return fmt.Errorf("publish %d messages to kafka (first: %s on %s): %w", len(msgs), msgs[0].ID, msgs[0].Topic, err)
	}
	return nil
}

func toKafka(m bus.Message) kafka.Message {
	headers := make([]kafka.Header, 0, len(m.Headers)+1)
	headers = append(headers, kafka.Header{Key: HeaderID, Value: []byte(m.ID)})
	for k, v := range m.Headers {
		headers = append(headers, kafka.Header{Key: k, Value: []byte(v)})
	}
	return kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Payload, Headers: headers}
}

func fromKafka(km kafka.Message) bus.Message {
	m := bus.Message{Topic: km.Topic, Key: string(km.Key), Payload: km.Value}
	for _, h := range km.Headers {
		if h.Key == HeaderID {
			m.ID = string(h.Value)
			continue
		}
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[h.Key] = string(h.Value)
	}
	return m
}

// Close stops every subscription after its current message, then closes the writer.
// Closing twice is harmless.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	if err := b.writer.Close(); err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}

// Ping asks the brokers for their metadata, for readiness checks.
func (b *Bus) Ping(ctx context.Context) error {
	if _, err := b.client.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	return nil
}
