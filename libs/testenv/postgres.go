package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const postgresHow = `fabu's tests need PostgreSQL. Start one on 127.0.0.1:5432 that lets user postgres in
without a password (Debian: apt-get install postgresql, then set "trust" for 127.0.0.1/32 in
pg_hba.conf), or point FABU_TEST_POSTGRES at one whose user may create databases, e.g.
postgres://user:password@host:5432/postgres?sslmode=disable`

// PostgresDSN creates a fresh, empty database fabu_test_<random> on the test PostgreSQL named
// by FABU_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
// and returns its DSN; the database is dropped, with any sessions still in it, when the test
// ends. An unreachable PostgreSQL fails the test with how to get one (see Missing).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := Getenv("FABU_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		Missing(t, "PostgreSQL at "+redactDSN(admin), postgresHow, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()

	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	name := "fabu_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("FABU_TEST_POSTGRES: %v", err)
	}
	return dsn
}

func dropDatabase(t testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Errorf("drop test database %s: %v", name, err)
		return
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("drop test database %s: %v", name, err)
	}
}

// withDatabase returns dsn, a URL or key=value connection string, naming database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", redactDSN(dsn), err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// In key=value form a later key wins.
	return dsn + " dbname=" + name, nil
}

// redactDSN hides a password in a URL DSN, for messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
