package kafka

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/bustest"
	"fabu.dev/libs/testenv"
)

func newTestBus(t *testing.T) *Bus {
	b, err := New(Config{
		Brokers:           testenv.Kafka(t),
		ClientID:          "fabu-test",
		Retry:             bus.RetryPolicy{MaxAttempts: 3, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
		Partitions:        3,
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("new kafka bus: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bus.Bus { return newTestBus(t) })
}

// EnsureTopics creates a topic and its dead-letter twin with the configured partitions,
// and leaves existing topics alone.
func TestEnsureTopics(t *testing.T) {
	b := newTestBus(t)
	ctx := context.Background()
	for range 2 { // the second call finds both topics and must not fail
		if err := b.EnsureTopics(ctx, "fabu.ensure.v1"); err != nil {
			t.Fatalf("EnsureTopics: %v", err)
		}
	}
	meta, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"fabu.ensure.v1", "fabu.ensure.v1.dlq"}})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(meta.Topics) != 2 {
		t.Fatalf("metadata lists %d topics, want 2", len(meta.Topics))
	}
	for _, topic := range meta.Topics {
		if topic.Error != nil || len(topic.Partitions) != 3 {
			t.Errorf("topic %s: error %v, %d partitions; want it to exist with 3", topic.Name, topic.Error, len(topic.Partitions))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"brokers", Config{Brokers: []string{"127.0.0.1:9092"}}, true},
		{"no brokers", Config{}, false},
		{"negative partitions", Config{Brokers: []string{"b:9092"}, Partitions: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPing(t *testing.T) {
	b, err := New(Config{Brokers: testenv.Kafka(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ping(context.Background()); err != nil {
		t.Errorf("Ping a running broker = %v", err)
	}
	down, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := down.Ping(ctx); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
}
