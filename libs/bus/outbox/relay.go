package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/bus"
)

// cleanEvery is how often a relay deletes published rows older than its retention.
const cleanEvery = 10 * time.Minute

// Relay publishes the outbox. Fill in the fields, then call Run; don't copy it afterwards.
type Relay struct {
	DB        *gorm.DB
	Publisher bus.Publisher
	Interval  time.Duration // how often to look for rows without a Kick; default 1s
	Batch     int           // rows per transaction; default 100
	Retention time.Duration // published rows older than this are deleted; default 24h
	Logger    *slog.Logger  // default slog.Default()

	once sync.Once
	kick chan struct{}
}

func (r *Relay) init() {
	r.once.Do(func() {
		r.kick = make(chan struct{}, 1)
		if r.Interval <= 0 {
			r.Interval = time.Second
		}
		if r.Batch <= 0 {
			r.Batch = 100
		}
		if r.Retention <= 0 {
			r.Retention = 24 * time.Hour
		}
		if r.Logger == nil {
			r.Logger = slog.Default()
		}
	})
}

// Kick wakes the relay at once, e.g. right after a transaction that added to the outbox
// committed. It never blocks; kicks while the relay is busy fold into one.
func (r *Relay) Kick() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes the outbox until ctx ends, then returns nil. A failed publish is retried
// after Interval, starting again from the oldest unpublished row, so nothing is lost or
// reordered.
func (r *Relay) Run(ctx context.Context) error {
	r.init()
	if r.DB == nil || r.Publisher == nil {
		return fmt.Errorf("outbox relay: DB and Publisher are required")
	}
	var cleaned time.Time
	for ctx.Err() == nil {
		if time.Since(cleaned) >= cleanEvery {
			if err := r.clean(ctx); err != nil && ctx.Err() == nil {
				r.Logger.Warn("clean outbox", "err", err)
			}
			cleaned = time.Now()
		}
		more, err := r.publishBatch(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.Logger.Warn("publish outbox; retrying", "in", r.Interval, "err", err)
			r.wait(ctx, false)
		case !more:
			r.wait(ctx, true)
		}
	}
	return nil
}

// wait waits for Interval, ctx or (if kickable) a Kick.
func (r *Relay) wait(ctx context.Context, kickable bool) {
	t := time.NewTimer(r.Interval)
	defer t.Stop()
	kick := r.kick
	if !kickable {
		kick = nil
	}
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-kick:
	}
}

// publishBatch publishes the oldest unpublished rows it may take and marks them, in one
// transaction. It reports whether a full batch went out, so more may be waiting.
func (r *Relay) publishBatch(ctx context.Context) (more bool, err error) {
	postgres := r.DB.Dialector.Name() == "postgres"
	err = r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Where("published_at IS NULL").Order("seq").Limit(r.Batch)
		if postgres {
			q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate, Options: clause.LockingOptionsSkipLocked})
		}
		var rows []row
		if err := q.Find(&rows).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		taken := rows
		if postgres {
			var err error
			if taken, err = unblocked(tx, rows); err != nil {
				return err
			}
		}
		if len(taken) == 0 {
			return nil
		}
		msgs := make([]bus.Message, len(taken))
		seqs := make([]int64, len(taken))
		for i, row := range taken {
			if msgs[i], err = row.message(); err != nil {
				return err
			}
			seqs[i] = row.Seq
		}
		if err := r.Publisher.Publish(ctx, msgs...); err != nil {
			return fmt.Errorf("publish %d outbox rows from seq %d: %w", len(msgs), seqs[0], err)
		}
		if err := tx.Model(&row{}).Where("seq IN ?", seqs).Update("published_at", time.Now().UTC()).Error; err != nil {
			return fmt.Errorf("mark %d outbox rows published from seq %d: %w", len(seqs), seqs[0], err)
		}
		more = len(taken) == r.Batch
		return nil
	})
	return more, err
}

// unblocked drops from rows (sorted by seq, locked by this transaction) every row of a
// (topic, key) that has an earlier unpublished row outside rows — one locked by another
// relay — so that the key's order holds. That relay publishes before it commits, and this
// query sees only committed rows, so a key is held back exactly while its earlier rows are
// in flight elsewhere.
func unblocked(tx *gorm.DB, rows []row) ([]row, error) {
	seqs := make([]int64, len(rows))
	for i, r := range rows {
		seqs[i] = r.Seq
	}
	var earlier []struct {
		Topic  string
		MsgKey string
		First  int64
	}
	err := tx.Model(&row{}).Select("topic, msg_key, MIN(seq) AS first").
		Where("published_at IS NULL AND seq < ? AND seq NOT IN ?", rows[len(rows)-1].Seq, seqs).
		Group("topic, msg_key").Scan(&earlier).Error
	if err != nil {
		return nil, fmt.Errorf("find outbox rows held by other relays: %w", err)
	}
	if len(earlier) == 0 {
		return rows, nil
	}
	type key struct{ topic, key string }
	first := make(map[key]int64, len(earlier))
	for _, e := range earlier {
		first[key{e.Topic, e.MsgKey}] = e.First
	}
	var out []row
	for _, r := range rows {
		if f, ok := first[key{r.Topic, r.MsgKey}]; ok && f < r.Seq {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// clean deletes published rows older than the retention.
func (r *Relay) clean(ctx context.Context) error {
	cutoff := time.Now().UTC().Add(-r.Retention)
	err := r.DB.WithContext(ctx).Where("published_at IS NOT NULL AND published_at < ?", cutoff).Delete(&row{}).Error
	if err != nil {
		return fmt.Errorf("delete outbox rows published before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return nil
}
