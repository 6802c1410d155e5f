package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"

	"fabu.dev/libs/bus"
)

// EnsureTopics creates topics and their dead-letter twins where they are missing, through
// the cluster's controller. Existing topics are left as they are.
func (b *Bus) EnsureTopics(ctx context.Context, topics ...string) error {
	var all []string
	for _, t := range topics {
		all = append(all, t, bus.DeadLetterTopic(t))
	}
	return b.ensure(ctx, all...)
}

// ensure creates the topics that are neither known nor found in the cluster's metadata.
func (b *Bus) ensure(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	var unknown []string
	for _, t := range topics {
		if !b.known[t] && !slices.Contains(unknown, t) {
			unknown = append(unknown, t)
		}
	}
	b.mu.Unlock()
	if len(unknown) == 0 {
		return nil
	}
	meta, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: unknown})
	if err != nil {
		return fmt.Errorf("look up kafka topics %v: %w", unknown, err)
	}
	var missing []kafka.TopicConfig
	rf := b.cfg.ReplicationFactor
	if rf == 0 {
		rf = min(len(meta.Brokers), 3)
	}
	var found []string
	for _, t := range meta.Topics {
		switch {
		case t.Error == nil:
			found = append(found, t.Name)
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			missing = append(missing, kafka.TopicConfig{Topic: t.Name, NumPartitions: b.cfg.Partitions, ReplicationFactor: rf})
		default:
			return fmt.Errorf("look up kafka topic %s: %w", t.Name, t.Error)
		}
	}
	if len(missing) > 0 {
		res, err := b.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
		if err != nil {
			return fmt.Errorf("create kafka topics: %w", err)
		}
		for _, t := range missing {
			if err := res.Errors[t.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				return fmt.Errorf("create kafka topic %s: %w", t.Topic, err)
			}
			found = append(found, t.Topic)
		}
	}
	b.mu.Lock()
	for _, t := range found {
		b.known[t] = true
	}
	b.mu.Unlock()
	return nil
}
