package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"gorm.io/gorm"

	"fabu.dev/libs/store"
)

func testTx(t *testing.T, db *store.DB) {
	ctx := context.Background()
	setting := func(tx *gorm.DB, key string) error {
		return tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", key).Error
	}
	exists := func(key string) bool { return count(t, db, "settings", "key = ?", key) == 1 }

	if err := db.Tx(ctx, func(tx *gorm.DB) error { return setting(tx, "committed") }); err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if !exists("committed") {
		t.Error("a Tx whose function returned nil did not commit")
	}

	errBoom := errors.New("boom")
	err := db.Tx(ctx, func(tx *gorm.DB) error {
		if err := setting(tx, "returned-error"); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("Tx = %v, want the function's error", err)
	}
	if exists("returned-error") {
		t.Error("a Tx whose function returned an error committed")
	}

	func() {
		defer func() {
			if r := recover(); r != "panic in tx" {
				t.Errorf("recovered %v, want the function's panic", r)
			}
		}()
		_ = db.Tx(ctx, func(tx *gorm.DB) error {
			if err := setting(tx, "panicked"); err != nil {
				return err
			}
			panic("panic in tx")
		})
	}()
	if exists("panicked") {
		t.Error("a Tx whose function panicked committed")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Tx(cancelled, func(tx *gorm.DB) error { return setting(tx, "cancelled") }); err == nil {
		t.Error("Tx with a cancelled context succeeded")
	}
	if exists("cancelled") {
		t.Error("a Tx with a cancelled context committed")
	}
}

func testFirstDelivery(t *testing.T, db *store.DB) {
	ctx := context.Background()
	first := func(consumer, event string) bool {
		t.Helper()
		var got bool
		err := db.Tx(ctx, func(tx *gorm.DB) error {
			var err error
			got, err = store.FirstDelivery(tx, consumer, event)
			return err
		})
		if err != nil {
			t.Fatalf("FirstDelivery(%s, %s): %v", consumer, event, err)
		}
		return got
	}
	steps := []struct {
		consumer, event string
		want            bool
	}{
		{"notifier", "e1", true},
		{"notifier", "e1", false},
		{"deployer", "e1", true}, // each consumer sees each event once
		{"notifier", "e2", true},
		{"notifier", "e2", false},
	}
	for _, s := range steps {
		if got := first(s.consumer, s.event); got != s.want {
			t.Errorf("FirstDelivery(%s, %s) = %v, want %v", s.consumer, s.event, got, s.want)
		}
	}

	// A delivery whose handling rolled back was not processed: it is first again.
	errHandler := errors.New("handler failed")
	err := db.Tx(ctx, func(tx *gorm.DB) error {
		if ok, err := store.FirstDelivery(tx, "builder", "e3"); err != nil || !ok {
			t.Errorf("FirstDelivery(builder, e3) = %v, %v; want true, nil", ok, err)
		}
		return errHandler
	})
	if !errors.Is(err, errHandler) {
		t.Fatalf("Tx = %v, want %v", err, errHandler)
	}
	if !first("builder", "e3") {
		t.Error("FirstDelivery after a rolled-back delivery = false, want true")
	}
}

func testFirstDeliveryConcurrent(t *testing.T, db *store.DB) {
	const workers = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts int
	)
	for range workers {
		wg.Go(func() {
			err := db.Tx(context.Background(), func(tx *gorm.DB) error {
				ok, err := store.FirstDelivery(tx, "notifier", "same-event")
				if ok {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				t.Errorf("FirstDelivery: %v", err)
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Errorf("%d of %d concurrent FirstDelivery calls returned true, want exactly 1", firsts, workers)
	}
}
