package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB {
		return open(t, store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "fabu.db")})
	})
}

// open opens cfg and closes the database when the test ends.
func open(t *testing.T, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}
