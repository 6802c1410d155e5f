package store

import (
	"io/fs"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"postgres", Config{Driver: Postgres, DSN: "postgres://localhost/fabu"}, false},
		{"sqlite", Config{Driver: SQLite, DSN: "/var/lib/fabu/fabu.db"}, false},
		{"unknown driver", Config{Driver: "mysql", DSN: "x"}, true},
		{"no driver", Config{DSN: "x"}, true},
		{"empty DSN", Config{Driver: SQLite, DSN: " "}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestMigrationsFor(t *testing.T) {
	for _, driver := range []string{Postgres, SQLite} {
		t.Run(driver, func(t *testing.T) {
			fsys, err := migrationsFor(driver)
			if err != nil {
				t.Fatalf("migrationsFor: %v", err)
			}
			b, err := fs.ReadFile(fsys, "00001_initial.sql")
			if err != nil {
				t.Fatalf("read 00001_initial.sql: %v", err)
			}
			if strings.Contains(string(b), "{{") {
				t.Error("a placeholder is left in 00001_initial.sql")
			}
			if want := placeholders[driver]["{{TIMESTAMP}}"] + " NOT NULL"; !strings.Contains(string(b), want) {
				t.Errorf("00001_initial.sql does not contain %q", want)
			}
		})
	}
	if _, err := migrationsFor("mysql"); err == nil {
		t.Error("migrationsFor(mysql) succeeded, want an error")
	}
}
