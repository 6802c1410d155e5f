package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"fabu.dev/libs/store"
	"fabu.dev/libs/testenv"
)

// Drivers are the databases every store-backed test runs against.
var Drivers = []string{store.SQLite, store.Postgres}

// Open returns a fresh, migrated database of driver for t, closed when t ends: a SQLite file
// in t's temporary directory, or a new PostgreSQL database from testenv.PostgresDSN.
func Open(t testing.TB, driver string) *store.DB {
	t.Helper()
	cfg := store.Config{Driver: driver}
	switch driver {
	case store.SQLite:
		cfg.DSN = filepath.Join(t.TempDir(), "fabu.db")
	case store.Postgres:
		cfg.DSN = testenv.PostgresDSN(t)
	default:
		t.Fatalf("storetest: unknown driver %q", driver)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", driver, err)
	}
	return db
}
