package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/libs/testenv"
)

// TestMigrateSealsGitCredentials: migration 00022 moves the user info of existing
// repository URLs into projects.git_credentials_sealed, sealed for the project's place, on
// both databases; rolling it back puts it back. Without the master keys a database that
// holds credentials refuses to migrate, saying why; one that holds none migrates anyway.
func TestMigrateSealsGitCredentials(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			keys, err := secret.NewKeyring(make([]byte, secret.KeySize))
			if err != nil {
				t.Fatal(err)
			}
			cfg := store.Config{Driver: driver}
			if driver == store.SQLite {
				cfg.DSN = filepath.Join(t.TempDir(), "fabu.db")
			} else {
				cfg.DSN = testenv.PostgresDSN(t)
			}
			db := open(t, cfg)
			migrateTo(t, db, gitCredentialsBefore)
			for _, r := range [][2]string{
				{"p1", "https://oauth2:glpat-s3cret@gitlab.example.com/web/shop.git"},
				{"p2", "https://gitlab.example.com/web/plain.git"},
				{"p3", "git@gitlab.example.com:web/ssh.git"},
			} {
				if err := db.Exec(`INSERT INTO projects (id, name, git_url, type, deploy_path) VALUES (?, ?, ?, 'static', '/srv/x')`,
					r[0], r[0], r[1]).Error; err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "master key") {
				t.Fatalf("Migrate without keys over credentials = %v, want an error naming the master key", err)
			}

			sealed := open(t, store.Config{Driver: driver, DSN: cfg.DSN, Sealer: keys})
			if err := sealed.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			type row struct{ ID, GitURL, GitCredentialsSealed string }
			var rows []row
			if err := sealed.Raw(`SELECT id, git_url, git_credentials_sealed FROM projects ORDER BY id`).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"p1": "https://gitlab.example.com/web/shop.git", "p2": "https://gitlab.example.com/web/plain.git",
				"p3": "git@gitlab.example.com:web/ssh.git"}
			for _, r := range rows {
				if r.GitURL != want[r.ID] {
					t.Errorf("%s: git_url = %q, want %q", r.ID, r.GitURL, want[r.ID])
				}
				if strings.Contains(r.GitCredentialsSealed, "s3cret") {
					t.Errorf("%s: sealed column holds the token in clear: %q", r.ID, r.GitCredentialsSealed)
				}
				if r.ID != "p1" {
					if r.GitCredentialsSealed != "" {
						t.Errorf("%s: credentials sealed for a URL without any", r.ID)
					}
					continue
				}
				got, err := keys.Open(r.GitCredentialsSealed, secret.GitCredentialsPlace("p1"))
				if err != nil || string(got) != "oauth2:glpat-s3cret" {
					t.Errorf("p1: sealed credentials open to %q, %v; want oauth2:glpat-s3cret", got, err)
				}
			}

			if err := sealed.MigrateDown(ctx, gitCredentialsBefore); err != nil {
				t.Fatalf("MigrateDown: %v", err)
			}
			var back string
			if err := sealed.Raw(`SELECT git_url FROM projects WHERE id = 'p1'`).Scan(&back).Error; err != nil {
				t.Fatal(err)
			}
			if back != "https://oauth2:glpat-s3cret@gitlab.example.com/web/shop.git" {
				t.Errorf("after rolling back, git_url = %q, want the URL with its credentials again", back)
			}
		})
	}
}

// migrateTo applies the migrations up to version.
func migrateTo(t *testing.T, db *store.DB, version int64) {
	t.Helper()
	if err := db.MigrateTo(context.Background(), version); err != nil {
		t.Fatalf("MigrateTo %d: %v", version, err)
	}
}

// gitCredentialsBefore is the newest migration before the one that seals git credentials.
const gitCredentialsBefore = 21
