// Package outbox is the transactional outbox: a service writes its events into table
// "outbox" in the same transaction as the state change they announce (Add), and a Relay
// publishes them to the bus after commit, in order, marking each row published. An event
// is therefore published if and only if its transaction committed — at least once: a relay
// that dies between publishing and marking publishes the rows again, and consumers
// deduplicate on the event ID.
//
// Order: rows are published in seq order per (topic, key). seq is assigned at insert, so
// writers of one key must serialize their transactions (fabu's writers update the run's row
// first, which locks it), or a later insert could commit before an earlier one.
//
// On PostgreSQL several relays may run: each takes a batch with FOR UPDATE SKIP LOCKED and
// holds back a row while an earlier row of its key is locked by another relay, so every row
// is published by one relay and keys keep their order. On SQLite run one relay.
package outbox

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/ids"
)

// row is one event in table outbox (created by libs/store/migrations).
type row struct {
	Seq         int64  `gorm:"column:seq;primaryKey;autoIncrement"`
	ID          string `gorm:"column:id"`
	Topic       string `gorm:"column:topic"`
	MsgKey      string `gorm:"column:msg_key"`
	Payload     string `gorm:"column:payload"` // the payload bytes; payloads are JSON, so text
	Headers     string `gorm:"column:headers"` // JSON object
	CreatedAt   time.Time
	PublishedAt *time.Time
}

func (row) TableName() string { return "outbox" }

// Add writes msgs into the outbox inside tx, the caller's transaction; they are published
// after it commits. A message without an ID gets a fresh one.
func Add(tx *gorm.DB, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	rows := make([]row, len(msgs))
	for i, m := range msgs {
		if m.Topic == "" {
			return fmt.Errorf("add message %s to outbox: no topic", m.ID)
		}
		if !utf8.Valid(m.Payload) {
			return fmt.Errorf("add %s message %s to outbox: payload is not UTF-8 text", m.Topic, m.ID)
		}
		headers := []byte("{}")
		if len(m.Headers) > 0 {
			var err error
			if headers, err = json.Marshal(m.Headers); err != nil {
				return fmt.Errorf("add %s message %s to outbox: encode headers: %w", m.Topic, m.ID, err)
			}
		}
		if m.ID == "" {
			m.ID = ids.New()
		}
		rows[i] = row{ID: m.ID, Topic: m.Topic, MsgKey: m.Key, Payload: string(m.Payload), Headers: string(headers), CreatedAt: now}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("add %d messages to outbox (first: %s %s): %w", len(msgs), msgs[0].Topic, rows[0].ID, err)
	}
	return nil
}

// message decodes a row.
func (r row) message() (bus.Message, error) {
	m := bus.Message{ID: r.ID, Topic: r.Topic, Key: r.MsgKey, Payload: []byte(r.Payload)}
	if r.Headers != "" && r.Headers != "{}" {
		if err := json.Unmarshal([]byte(r.Headers), &m.Headers); err != nil {
			return m, fmt.Errorf("decode headers of outbox row %d (%s): %w", r.Seq, r.ID, err)
		}
	}
	return m, nil
}
