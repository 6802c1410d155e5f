// Package notifier is fabu's notifier service: it turns finished runs into notification
// deliveries. This first version records one delivery per finished run on the "record"
// channel; chat and email channels plug in behind the same consumer.
package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/events"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
)

// Group is the notifier's consumer group.
const Group = "notifier"

// Delivery is one notification sent (or recorded) for a run.
type Delivery struct {
	ID        string `gorm:"primaryKey"`
	EventID   string
	RunID     string
	Channel   string
	Status    string
	Detail    string
	CreatedAt time.Time
}

// TableName tells GORM the table.
func (Delivery) TableName() string { return "notification_deliveries" }

// Service is the notifier service.
type Service struct {
	db  *store.DB
	bus bus.Subscriber
	log *slog.Logger
}

// New returns the notifier service.
func New(db *store.DB, sub bus.Subscriber, log *slog.Logger) *Service {
	return &Service{db: db, bus: sub, log: log}
}

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}}
}

// Run consumes finished runs until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return s.bus.Subscribe(ctx, events.TopicRunFinished, Group, s.handle)
}

// handle records the delivery for one finished run. The unique event_id makes redelivery
// of the same event a no-op.
func (s *Service) handle(ctx context.Context, m bus.Message) error {
	var ev events.RunFinished
	if err := events.Decode(m, &ev); err != nil {
		return err
	}
	detail := fmt.Sprintf("run %s %s", ev.RunID, ev.Status)
	if ev.Error != nil {
		detail += ": " + ev.Error.Message
	}
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		first, err := store.FirstDelivery(tx, Group, m.ID)
		if err != nil || !first {
			return err
		}
		d := Delivery{ID: ids.New(), EventID: m.ID, RunID: ev.RunID, Channel: "record", Status: "recorded",
			Detail: detail, CreatedAt: time.Now().UTC()}
		if err := tx.Create(&d).Error; err != nil {
			return fmt.Errorf("record notification for run %s: %w", ev.RunID, err)
		}
		return nil
	})
}
