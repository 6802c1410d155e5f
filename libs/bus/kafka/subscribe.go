package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/internal/deliver"
)

// commitTimeout bounds a commit or dead-letter write that runs after the subscription's
// context ended, so that a finished message is not handled again.
const commitTimeout = 10 * time.Second

// Subscribe joins group on topic and handles its messages until ctx ends or the bus is
// closed; then it returns nil. It fails only when the topic cannot be created or the
// reader breaks.
func (b *Bus) Subscribe(ctx context.Context, topic, group string, h bus.Handler) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("subscribe to %s: %w", topic, bus.ErrClosed)
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.stop, cancel)()
	if err := b.EnsureTopics(ctx, topic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           b.cfg.Brokers,
		GroupID:           group,
		Topic:             topic,
		Dialer:            &kafka.Dialer{ClientID: b.cfg.ClientID, Timeout: 10 * time.Second, DualStack: true},
		StartOffset:       kafka.FirstOffset, // a new group gets what was published before it
		CommitInterval:    0,                 // commit synchronously, after the handler
		HeartbeatInterval: b.cfg.HeartbeatInterval,
		SessionTimeout:    b.cfg.SessionTimeout,
		RebalanceTimeout:  b.cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		MaxWait:           500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		ReadLagInterval:   -1,
		ErrorLogger:       kafka.LoggerFunc(b.logf(topic, group)),
	})
	defer func() {
		if err := r.Close(); err != nil {
			b.cfg.Logger.Warn("close kafka reader", "topic", topic, "group", group, "err", err)
		}
	}()
	for {
		km, err := r.FetchMessage(ctx)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch from kafka topic %s for group %s: %w", topic, group, err)
		}
		if !b.handle(ctx, r, group, km, h) {
			return nil
		}
	}
}

// handle runs h on km and commits it unless the subscription stops first; it reports
// whether to go on.
func (b *Bus) handle(ctx context.Context, r *kafka.Reader, group string, km kafka.Message, h bus.Handler) bool {
	m := fromKafka(km)
	outcome, err := deliver.Handle(ctx, b.cfg.Retry, h, m)
	switch outcome {
	case deliver.Stopped:
		return false
	case deliver.DeadLetter:
		if !b.deadLetter(ctx, group, m, err) {
			return false
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := r.CommitMessages(cctx, km); err != nil {
		// The message will come again (to this group, maybe to another reader after a
		// rebalance); consumers are idempotent, so this costs only time.
		b.cfg.Logger.Warn("commit kafka offset failed; the message will be redelivered",
			"topic", m.Topic, "group", group, "partition", km.Partition, "offset", km.Offset, "id", m.ID, "err", err)
	}
	return ctx.Err() == nil
}

// deadLetter writes m to its dead-letter topic, retrying until it succeeds or ctx ends:
// the message must not be committed before it is safe there. It reports success.
func (b *Bus) deadLetter(ctx context.Context, group string, m bus.Message, cause error) bool {
	b.cfg.Logger.Error("message dead-lettered", "topic", m.Topic, "group", group, "id", m.ID, "key", m.Key, "err", cause)
	dl := bus.DeadLetter(m, cause)
	for attempt := 1; ; attempt++ {
		err := b.write(ctx, []bus.Message{dl})
		if err == nil {
			return true
		}
		b.cfg.Logger.Warn("write dead letter failed; retrying", "topic", dl.Topic, "id", m.ID, "err", err)
		t := time.NewTimer(b.cfg.Retry.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

func (b *Bus) logf(topic, group string) func(string, ...any) {
	return func(format string, args ...any) {
		b.cfg.Logger.Warn("kafka reader: "+fmt.Sprintf(format, args...), "topic", topic, "group", group)
	}
}
