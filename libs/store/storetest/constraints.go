package storetest

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"fabu.dev/libs/store"
)

func insertUser(db *store.DB, id, username string) error {
	return db.Exec("INSERT INTO users (id, username, password_hash, role) VALUES (?, ?, ?, ?)",
		id, username, "hash", "admin").Error
}

func insertProject(t *testing.T, db *store.DB, id, name string) {
	t.Helper()
	exec(t, db, "INSERT INTO projects (id, name, git_url, type, deploy_path) VALUES (?, ?, ?, ?, ?)",
		id, name, "https://git.example/"+name+".git", "static", "/srv/"+name)
}

func insertRun(t *testing.T, db *store.DB, id, projectID string) {
	t.Helper()
	exec(t, db, "INSERT INTO runs (id, project_id, ref, status) VALUES (?, ?, ?, ?)", id, projectID, "main", "requested")
}

func testUniqueViolation(t *testing.T, db *store.DB) {
	if err := insertUser(db, "u1", "alice"); err != nil {
		t.Fatalf("insert first user: %v", err)
	}
	tests := []struct {
		name   string
		err    error
		unique bool
	}{
		{"unique column", insertUser(db, "u2", "alice"), true},
		{"primary key", insertUser(db, "u1", "bob"), true},
		{"composite primary key", func() error {
			exec(t, db, "INSERT INTO processed_events (consumer, event_id) VALUES ('c', 'e')")
			return db.Exec("INSERT INTO processed_events (consumer, event_id) VALUES ('c', 'e')").Error
		}(), true},
		{"raw driver error", func() error {
			sqlDB, err := db.DB.DB()
			if err != nil {
				t.Fatal(err)
			}
			q := "INSERT INTO settings (key, value) VALUES ('k', 'v')"
			if _, err := sqlDB.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			_, err = sqlDB.Exec(q)
			return err
		}(), true},
		{"foreign key", db.Exec("INSERT INTO auth_tokens (id, user_id, token_hash, expires_at) VALUES (?, ?, ?, ?)",
			"t1", "nobody", "h", db.NowFunc()).Error, false},
		{"not null", db.Exec("INSERT INTO users (id, username, password_hash, role) VALUES ('u3', 'carol', 'h', NULL)").Error, false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "no error" && tt.err == nil {
				t.Fatal("statement succeeded, want a constraint error")
			}
			if got := store.IsUniqueViolation(tt.err); got != tt.unique {
				t.Errorf("IsUniqueViolation(%v) = %v, want %v", tt.err, got, tt.unique)
			}
		})
	}
}

func testForeignKeys(t *testing.T, db *store.DB) {
	err := db.Exec("INSERT INTO runs (id, project_id, status) VALUES ('r0', 'no-such-project', 'requested')").Error
	if !errors.Is(err, gorm.ErrForeignKeyViolated) {
		t.Errorf("run of unknown project: err = %v, want gorm.ErrForeignKeyViolated", err)
	}

	insertProject(t, db, "p1", "shop")
	insertProject(t, db, "p2", "blog")
	exec(t, db, "INSERT INTO servers (id, name, host, port, ssh_user) VALUES ('s1', 'web1', '10.0.0.1', 22, 'deploy')")
	exec(t, db, "INSERT INTO project_servers (project_id, server_id) VALUES ('p1', 's1'), ('p2', 's1')")
	insertRun(t, db, "r1", "p1")
	insertRun(t, db, "r2", "p2")
	for _, run := range []string{"r1", "r2"} {
		for line := 1; line <= 3; line++ {
			exec(t, db, "INSERT INTO run_logs (run_id, line, ts, stream, text) VALUES (?, ?, ?, 'stdout', 'hello')",
				run, line, db.NowFunc())
		}
	}

	exec(t, db, "DELETE FROM projects WHERE id = ?", "p1")
	checks := []struct {
		table, where string
		arg          string
		want         int64
	}{
		{"runs", "project_id = ?", "p1", 0},
		{"run_logs", "run_id = ?", "r1", 0},
		{"project_servers", "project_id = ?", "p1", 0},
		{"runs", "project_id = ?", "p2", 1},
		{"run_logs", "run_id = ?", "r2", 3},
		{"project_servers", "project_id = ?", "p2", 1},
		{"servers", "id = ?", "s1", 1},
	}
	for _, c := range checks {
		if got := count(t, db, c.table, c.where, c.arg); got != c.want {
			t.Errorf("after deleting project p1: %s where %s [%s]: %d rows, want %d", c.table, c.where, c.arg, got, c.want)
		}
	}

	exec(t, db, "DELETE FROM servers WHERE id = ?", "s1")
	if got := count(t, db, "project_servers", "server_id = ?", "s1"); got != 0 {
		t.Errorf("after deleting server s1: %d project_servers rows, want 0", got)
	}
}
