package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
	"fabu.dev/libs/testenv"
)

const deadline = 30 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// databases lists the drivers every test runs on, each opening a fresh migrated database.
var databases = []struct {
	name string
	open func(t *testing.T) *store.DB
}{
	{"sqlite", func(t *testing.T) *store.DB {
		return openDB(t, store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "fabu.db")})
	}},
	{"postgres", openPostgres},
}

func openPostgres(t *testing.T) *store.DB {
	return openDB(t, store.Config{Driver: store.Postgres, DSN: testenv.PostgresDSN(t)})
}

func openDB(t *testing.T, cfg store.Config) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", cfg.Driver, err)
	}
	return db
}

// recorder is a bus.Publisher that keeps what it is given, failing its first failures
// calls.
type recorder struct {
	mu       sync.Mutex
	msgs     []bus.Message
	by       []string // which relay published each message
	failures int
	calls    int
}

func (r *recorder) as(name string) bus.Publisher { return publisherFunc{r, name} }

type publisherFunc struct {
	r    *recorder
	name string
}

func (p publisherFunc) Publish(_ context.Context, msgs ...bus.Message) error {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.failures {
		return errors.New("broker unavailable")
	}
	for _, m := range msgs {
		r.msgs = append(r.msgs, m)
		r.by = append(r.by, p.name)
	}
	return nil
}

func (r *recorder) snapshot() []bus.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Message(nil), r.msgs...)
}

// run starts relay in the background until the test ends.
func run(t *testing.T, relay *Relay) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay Run returned %v, want nil", err)
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	stop := time.Now().Add(deadline)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(stop) {
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
		<-tick.C
	}
}

// add writes msgs to the outbox in one committed transaction.
func add(t *testing.T, db *store.DB, msgs ...bus.Message) {
	t.Helper()
	if err := db.Tx(context.Background(), func(tx *gorm.DB) error { return Add(tx, msgs...) }); err != nil {
		t.Fatalf("add %d messages: %v", len(msgs), err)
	}
}

// messages returns n messages round-robin over keys.
func messages(n, keys int) []bus.Message {
	var msgs []bus.Message
	for i := range n {
		msgs = append(msgs, bus.Message{
			ID: ids.New(), Topic: "fabu.test.v1", Key: "run-" + strconv.Itoa(i%keys),
			Payload: []byte(fmt.Sprintf(`{"seq":%d}`, i)),
		})
	}
	return msgs
}

func unpublished(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&row{}).Where("published_at IS NULL").Count(&n).Error; err != nil {
		t.Fatalf("count unpublished rows: %v", err)
	}
	return n
}
