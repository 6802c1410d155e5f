package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestSlowQueryLogHidesParameters logs every query as slow and checks that the warning names
// the query but not its parameter, which may be a secret.
func TestSlowQueryLogHidesParameters(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	db, err := Open(context.Background(), Config{Driver: SQLite, DSN: ":memory:"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })

	const secret = "s3cret-token-value"
	everySlow := db.Session(&gorm.Session{Logger: slowQueryLogger{threshold: time.Nanosecond}})
	var n int64
	// Scan explains its SQL through GORM's recorder, Exec through the session logger.
	if err := everySlow.Raw("SELECT count(*) WHERE ? <> ''", secret).Scan(&n).Error; err != nil {
		t.Fatalf("query: %v", err)
	}
	if err := everySlow.Exec("CREATE TABLE t (v TEXT)").Error; err != nil {
		t.Fatalf("create table: %v", err)
	}
	if err := everySlow.Exec("INSERT INTO t (v) VALUES (?)", secret).Error; err != nil {
		t.Fatalf("insert: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "SELECT count(*) WHERE ?") || !strings.Contains(out, "INSERT INTO t (v) VALUES (?)") {
		t.Errorf("log = %q, want a slow query warning with the SQL and its placeholder", out)
	}
	if !strings.Contains(out, "logger_test.go") {
		t.Errorf("log = %q, want the caller's file as source", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("log = %q, contains the parameter value", out)
	}

	buf.Reset()
	if err := db.Raw("SELECT count(*) WHERE ? <> ''", secret).Scan(&n).Error; err != nil {
		t.Fatalf("query: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("a fast query was logged: %q", buf.String())
	}
}
