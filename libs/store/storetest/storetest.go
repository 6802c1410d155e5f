// Package storetest is the contract suite for store: every database fabu runs on must pass
// it. store's own tests run it against PostgreSQL and SQLite.
package storetest

import (
	"context"
	"testing"

	"fabu.dev/libs/store"
)

// Run runs the contract suite. open must return a new, empty, unmigrated database each time
// it is called, and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	migrated := func(t *testing.T) *store.DB {
		t.Helper()
		db := open(t)
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	}
	t.Run("MigrateFromEmptyTwice", func(t *testing.T) { testMigrate(t, open(t)) })
	t.Run("Schema", func(t *testing.T) { testSchema(t, migrated(t)) })
	t.Run("DownAndUp", func(t *testing.T) { testDownAndUp(t, migrated(t)) })
	t.Run("UniqueViolation", func(t *testing.T) { testUniqueViolation(t, migrated(t)) })
	t.Run("ForeignKeys", func(t *testing.T) { testForeignKeys(t, migrated(t)) })
	t.Run("Tx", func(t *testing.T) { testTx(t, migrated(t)) })
	t.Run("FirstDelivery", func(t *testing.T) { testFirstDelivery(t, migrated(t)) })
	t.Run("FirstDeliveryConcurrent", func(t *testing.T) { testFirstDeliveryConcurrent(t, migrated(t)) })
	t.Run("Timestamps", func(t *testing.T) { testTimestamps(t, migrated(t)) })
	t.Run("OutboxSeq", func(t *testing.T) { testOutboxSeq(t, migrated(t)) })
}

// exec runs one statement and fails the test on error.
func exec(t *testing.T, db *store.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// count returns the number of rows of table matching where.
func count(t *testing.T, db *store.DB, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Table(table).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatalf("count %s where %s: %v", table, where, err)
	}
	return n
}
