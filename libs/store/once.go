package store

import (
	"errors"
	"fmt"

	"github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"
)

// FirstDelivery records that consumer has processed the event eventID, inside the caller's
// transaction, and reports whether this is the first time: false means the event was seen
// before and must be skipped. Run it in the transaction that applies the event, so the record
// and the effect commit or roll back together.
func FirstDelivery(tx *gorm.DB, consumer, eventID string) (bool, error) {
	res := tx.Exec(
		"INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) "+
			"ON CONFLICT (consumer, event_id) DO NOTHING",
		consumer, eventID, tx.NowFunc())
	if res.Error != nil {
		return false, fmt.Errorf("record delivery of %s to %s: %w", eventID, consumer, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// IsUniqueViolation reports whether err comes from a unique or primary key constraint, on
// either driver — translated by GORM or straight from the driver.
func IsUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == "23505"
	}
	if sqErr, ok := errors.AsType[*sqlite.Error](err); ok {
		code := sqErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
