package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// placeholders maps each dialect's placeholders, used in migrations/*.sql, to its SQL. One
// schema history serves both databases.
var placeholders = map[string]map[string]string{
	Postgres: {
		"{{TIMESTAMP}}": "TIMESTAMPTZ",
		"{{NOW}}":       "CURRENT_TIMESTAMP",
		"{{SERIAL}}":    "BIGSERIAL PRIMARY KEY",
		"{{BLOB}}":      "BYTEA",
	},
	SQLite: {
		// Declared TIMESTAMP so that the driver scans the column into a time.Time.
		"{{TIMESTAMP}}": "TIMESTAMP",
		// The driver's own format at millisecond precision, in UTC, so that defaults sort
		// and compare like the values the application writes.
		"{{NOW}}":    "(strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))",
		"{{SERIAL}}": "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{BLOB}}":   "BLOB",
	},
}

// migrationsFor returns the migrations with driver's placeholders substituted.
func migrationsFor(driver string) (fs.FS, error) {
	repl, ok := placeholders[driver]
	if !ok {
		return nil, fmt.Errorf("migrations: unknown driver %q", driver)
	}
	pairs := make([]string, 0, 2*len(repl))
	for k, v := range repl {
		pairs = append(pairs, k, v)
	}
	r := strings.NewReplacer(pairs...)
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	out := fstest.MapFS{}
	for _, name := range files {
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		text := r.Replace(string(b))
		if i := strings.Index(text, "{{"); i >= 0 {
			end := min(i+30, len(text))
			return nil, fmt.Errorf("migrations: %s: unknown placeholder at %q", name, text[i:end])
		}
		out[strings.TrimPrefix(name, "migrations/")] = &fstest.MapFile{Data: []byte(text), Mode: 0o444}
	}
	// Migrations written in Go (they seal, which SQL cannot) are listed under a name too;
	// goose pairs the name with the registered function by its version.
	out[gitCredentialsName] = &fstest.MapFile{Mode: 0o444}
	return out, nil
}

// provider returns a goose provider for db. On PostgreSQL it holds a session-level advisory
// lock while it migrates, so processes that start at once migrate one after the other.
func (db *DB) provider() (*goose.Provider, error) {
	fsys, err := migrationsFor(db.Driver)
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB.DB()
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithLogger(goose.NopLogger()), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(db.gitCredentialsMigration())}
	dialect := goose.DialectSQLite3
	if db.Driver == Postgres {
		dialect = goose.DialectPostgres
		// Poll for the lock every second, for up to 5 minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, sqlDB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration. It does nothing when the schema is current.
func (db *DB) Migrate(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s database: %w", db.Driver, err)
	}
	return nil
}

// MigrateTo applies the pending migrations up to version and no further (tests of a
// migration start from the schema before it).
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate %s database to %d: %w", db.Driver, version, err)
	}
	return nil
}

// MigrateDown rolls applied migrations back, newest first, until the schema is at version
// (0: nothing of fabu's left). It is for downgrading fabu: run it with the newer binary
// before starting the older one. A version above the newest known migration is an error.
func (db *DB) MigrateDown(ctx context.Context, version int64) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	srcs := p.ListSources()
	if version < 0 || len(srcs) == 0 || version > srcs[len(srcs)-1].Version {
		return fmt.Errorf("migrate %s database down: version %d is not between 0 and the newest migration", db.Driver, version)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate %s database down to %d: %w", db.Driver, version, err)
	}
	return nil
}

// Migration is the state of one migration, as MigrationStatus reports it.
type Migration struct {
	Version   int64
	Name      string    // file name, e.g. "00001_initial.sql"
	Applied   bool      // false: pending
	AppliedAt time.Time // zero when pending
}

// MigrationStatus lists every known migration in version order, applied or pending.
func (db *DB) MigrationStatus(ctx context.Context) ([]Migration, error) {
	p, err := db.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status of %s database: %w", db.Driver, err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		out = append(out, Migration{
			Version:   s.Source.Version,
			Name:      s.Source.Path,
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}
