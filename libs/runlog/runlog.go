// Package runlog stores a run's log as numbered lines in the run_logs table and reads them
// back for the API and the live stream. Writers mask secrets before anything is stored and
// batch inserts so a chatty build does not become one statement per line.
package runlog

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Streams a line can come from.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamSystem = "system"
)

// maxLine caps one stored line; longer lines are cut with a marker.
const maxLine = 8 << 10

// Line is one stored log line.
type Line struct {
	RunID  string    `gorm:"primaryKey" json:"-"`
	Line   int       `gorm:"primaryKey" json:"n"`
	TS     time.Time `gorm:"column:ts" json:"ts"`
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
}

// TableName tells GORM the table.
func (Line) TableName() string { return "run_logs" }

// Writer appends lines to one run's log. It is safe for concurrent use; Close flushes.
type Writer struct {
	db    *gorm.DB
	runID string
	mask  []string

	mu      sync.Mutex
	next    int
	pending []Line
	partial map[string]*bytes.Buffer
	err     error
	flushAt time.Time
	stop    chan struct{}
	done    chan struct{}
}

// NewWriter returns a writer that continues run runID's log after its last stored line, so
// the builder and then the deployer write one numbered log. Every occurrence of a string in
// mask is replaced by "****" before storing.
func NewWriter(ctx context.Context, db *gorm.DB, runID string, mask []string) (*Writer, error) {
	var last int
	err := db.WithContext(ctx).Model(&Line{}).Where("run_id = ?", runID).
		Select("COALESCE(MAX(line), 0)").Scan(&last).Error
	if err != nil {
		return nil, fmt.Errorf("find last log line of run %s: %w", runID, err)
	}
	var m []string
	for _, s := range mask {
		if len(s) >= 4 { // masking tiny strings would shred the log and hide nothing
			m = append(m, s)
		}
	}
	w := &Writer{
		db: db, runID: runID, mask: m, next: last + 1, partial: map[string]*bytes.Buffer{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go w.tick()
	return w, nil
}

// tick flushes complete lines while output is quiet, so a line written just before a long
// silent step still reaches live viewers.
func (w *Writer) tick() {
	defer close(w.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			w.flushLocked()
			w.mu.Unlock()
		}
	}
}

// Stream returns an io.Writer for stream; output is split into lines.
func (w *Writer) Stream(stream string) *StreamWriter { return &StreamWriter{w: w, stream: stream} }

// Printf writes one system line.
func (w *Writer) Printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.add(StreamSystem, fmt.Sprintf(format, args...))
	w.maybeFlush()
}

// StreamWriter is one stream of a Writer.
type StreamWriter struct {
	w      *Writer
	stream string
}

// Write splits p into lines and stores complete ones; a trailing partial line waits for
// its end or for Close.
func (s *StreamWriter) Write(p []byte) (int, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := w.partial[s.stream]
	if buf == nil {
		buf = &bytes.Buffer{}
		w.partial[s.stream] = buf
	}
	buf.Write(p)
	for {
		i := bytes.IndexByte(buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(buf.Next(i + 1))
		w.add(s.stream, strings.TrimRight(line, "\r\n"))
	}
	if buf.Len() > maxLine {
		// A line too long to wait for is stored in pieces, each masked on its own, so a
		// piece never ends where a secret may begin: that end waits for the rest.
		text := buf.String()
		cut := safeCut(text, w.mask)
		w.add(s.stream, text[:cut])
		buf.Reset()
		buf.WriteString(text[cut:])
	}
	w.maybeFlush()
	return len(p), w.err
}

// safeCut returns where text may be cut so that no secret in masks is split: before an
// occurrence crossing the end, and before an end that could begin one.
func safeCut(text string, masks []string) int {
	cut := len(text)
	for changed := true; changed; {
		changed = false
		for _, m := range masks {
			for start := max(0, cut-len(m)+1); start < cut; start++ {
				end := start + len(m)
				if end <= len(text) && text[start:end] == m || end > len(text) && strings.HasPrefix(m, text[start:]) {
					cut, changed = start, true
					break
				}
			}
		}
	}
	return cut
}

func (w *Writer) add(stream, text string) {
	for _, s := range w.mask {
		text = strings.ReplaceAll(text, s, "****")
	}
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) > maxLine {
		// Cut on a rune boundary: half a rune is invalid UTF-8, which PostgreSQL refuses,
		// and a refused batch stops the writer for good.
		cut := maxLine
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + " …[line truncated]"
	}
	w.pending = append(w.pending, Line{RunID: w.runID, Line: w.next, TS: time.Now().UTC(), Stream: stream, Text: text})
	w.next++
}

// maybeFlush writes pending lines when enough have gathered or enough time has passed, so
// live viewers see output within a fraction of a second.
func (w *Writer) maybeFlush() {
	if len(w.pending) >= 200 || time.Since(w.flushAt) > 150*time.Millisecond {
		w.flushLocked()
	}
}

func (w *Writer) flushLocked() {
	if len(w.pending) == 0 || w.err != nil {
		return
	}
	if err := w.db.CreateInBatches(w.pending, 200).Error; err != nil {
		w.err = fmt.Errorf("store log of run %s: %w", w.runID, err)
		return
	}
	w.pending = w.pending[:0]
	w.flushAt = time.Now()
}

// Flush stores everything written so far, including partial lines.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for stream, buf := range w.partial {
		if buf.Len() > 0 {
			w.add(stream, buf.String())
			buf.Reset()
		}
	}
	w.flushLocked()
	return w.err
}

// Close stops the background flushing and flushes the writer. It may be called once.
func (w *Writer) Close() error {
	close(w.stop)
	<-w.done
	return w.Flush()
}

// Read returns up to limit lines of run runID after line number after, in order.
func Read(ctx context.Context, db *gorm.DB, runID string, after, limit int) ([]Line, error) {
	if limit <= 0 || limit > 5000 {
		limit = 5000
	}
	var ls []Line
	err := db.WithContext(ctx).Where("run_id = ? AND line > ?", runID, after).
		Order("line").Limit(limit).Find(&ls).Error
	if err != nil {
		return nil, fmt.Errorf("read log of run %s: %w", runID, err)
	}
	return ls, nil
}

// pruneRuns is how many runs' logs one pass of Prune removes at a time.
const pruneRuns = 200

// Prune deletes the log lines of runs that finished before cutoff and marks those runs
// (runs.logs_pruned_at), so readers can tell an expired log from an empty one and later
// passes skip them. It returns how many runs' logs it removed. Each batch of runs is one
// transaction; several processes may prune at once.
func Prune(ctx context.Context, db *gorm.DB, cutoff time.Time) (int, error) {
	cutoff = cutoff.UTC()
	total := 0
	for {
		var ids []string
		err := db.WithContext(ctx).Raw(`SELECT id FROM runs
			WHERE finished_at < ? AND logs_pruned_at IS NULL ORDER BY finished_at LIMIT ?`, cutoff, pruneRuns).
			Scan(&ids).Error
		if err != nil {
			return total, fmt.Errorf("prune logs: %w", err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`DELETE FROM run_logs WHERE run_id IN ?`, ids).Error; err != nil {
				return err
			}
			return tx.Exec(`UPDATE runs SET logs_pruned_at = ? WHERE id IN ? AND logs_pruned_at IS NULL`,
				time.Now().UTC(), ids).Error
		})
		if err != nil {
			return total, fmt.Errorf("prune logs: %w", err)
		}
		total += len(ids)
		if len(ids) < pruneRuns {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
