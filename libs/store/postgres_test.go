package store_test

import (
	"context"
	"testing"

	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/libs/testenv"
)

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB {
		return open(t, store.Config{Driver: store.Postgres, DSN: testenv.PostgresDSN(t)})
	})
}

// TestPostgresConcurrentMigrate starts several processes' worth of Migrate at once on one
// empty database: the advisory lock makes them migrate one after another, so all succeed.
func TestPostgresConcurrentMigrate(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	const n = 3
	dbs := make([]*store.DB, n)
	for i := range dbs {
		dbs[i] = open(t, store.Config{Driver: store.Postgres, DSN: dsn})
	}
	errs := make(chan error, n)
	start := make(chan struct{})
	for _, db := range dbs {
		go func() {
			<-start
			errs <- db.Migrate(context.Background())
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	st, err := dbs[0].MigrationStatus(context.Background())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("%s pending after concurrent Migrate", m.Name)
		}
	}
}
