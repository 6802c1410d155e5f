// Package store opens fabu's database — PostgreSQL in production, SQLite (pure Go, no cgo)
// in embedded mode — through GORM, and migrates it with goose from one set of SQL files
// written for both dialects.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// The drivers Config.Driver accepts.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Config says which database to open.
type Config struct {
	// Driver is "postgres" or "sqlite".
	Driver string
	// DSN is a PostgreSQL connection string (URL or key=value) for "postgres", and a file
	// path (or ":memory:") for "sqlite"; fabu adds the SQLite pragmas it needs itself.
	DSN string
	// Sealer seals and opens secrets that migrations move between columns (migration 22
	// takes credentials out of repository URLs). nil is fine while the database holds no
	// such value; otherwise Migrate fails and says which keys it needs.
	Sealer Sealer
}

// Validate reports whether cfg names a known driver and a DSN.
func (cfg Config) Validate() error {
	switch cfg.Driver {
	case Postgres, SQLite:
	default:
		return fmt.Errorf("store: unknown driver %q (want %q or %q)", cfg.Driver, Postgres, SQLite)
	}
	if strings.TrimSpace(cfg.DSN) == "" {
		return errors.New("store: empty DSN")
	}
	return nil
}

// DB is an open database. The embedded *gorm.DB is safe for concurrent use.
type DB struct {
	*gorm.DB
	// Driver is the Config.Driver the database was opened with.
	Driver string
	sealer Sealer // Config.Sealer, for migrations that seal
}

// SlowQuery is the duration from which a query is logged as slow.
const SlowQuery = 500 * time.Millisecond

// Open opens the database cfg names and pings it.
//
// SQLite is opened with WAL (readers do not block the writer), a 10s busy timeout, foreign
// keys enforced and immediate transactions, and with one connection in the pool: SQLite
// allows a single writer, and with more connections concurrent transactions fail with
// SQLITE_BUSY (a deferred transaction that upgrades to a write cannot wait for the lock)
// instead of queueing; one connection makes database/sql queue them in process. So a
// function run by Tx must use its tx, never the DB, or it waits for itself.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		// Unique and foreign key violations become gorm.ErrDuplicatedKey and
		// gorm.ErrForeignKeyViolated on both drivers.
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		Logger:         slowQueryLogger{threshold: SlowQuery},
	}
	var dialector gorm.Dialector
	switch cfg.Driver {
	case Postgres:
		dialector = postgres.New(postgres.Config{
			DSN:          cfg.DSN,
			OptionOpenDB: []stdlib.OptionOpenDB{stdlib.OptionAfterConnect(scanTimesInUTC)},
		})
	case SQLite:
		dialector = sqlite.Open(sqliteDSN(cfg.DSN))
	}
	gdb, err := gorm.Open(dialector, gcfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	db := &DB{DB: gdb, Driver: cfg.Driver, sealer: cfg.Sealer}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	if cfg.Driver == SQLite {
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0) // a ":memory:" database lives as long as its connection
		sqlDB.SetConnMaxIdleTime(0)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := db.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// sqliteDSN adds fabu's pragmas to a SQLite file path.
func sqliteDSN(dsn string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// scanTimesInUTC makes pgx return TIMESTAMPTZ values in UTC instead of time.Local, so times
// read from PostgreSQL and SQLite look alike.
func scanTimesInUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return fmt.Errorf("ping %s database: %w", db.Driver, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", db.Driver, err)
	}
	return nil
}

// Close closes the database's connections.
func (db *DB) Close() error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return fmt.Errorf("close %s database: %w", db.Driver, err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("close %s database: %w", db.Driver, err)
	}
	return nil
}

// Tx runs fn in a transaction: it commits when fn returns nil and rolls back when fn returns
// an error or panics (the panic goes on after the rollback). fn must use tx only.
func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(fn)
}
