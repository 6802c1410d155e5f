package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// TestSealedColumnsCoverTheSchema: every column whose name says it holds a sealed value is
// in sealedColumns, so rotation reaches it.
func TestSealedColumnsCoverTheSchema(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	var cols []struct{ Table, Column string }
	err := db.Raw(`SELECT m.name AS "table", p.name AS "column" FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND p.name LIKE '%sealed%'`).Scan(&cols).Error
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, c := range sealedColumns {
		known[c.table+"."+c.column] = true
	}
	if len(cols) == 0 {
		t.Fatal("found no sealed columns in the schema")
	}
	for _, c := range cols {
		if !known[c.Table+"."+c.Column] {
			t.Errorf("%s.%s holds sealed values but key rotation does not re-seal it", c.Table, c.Column)
		}
	}
}

func TestRotateEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	old, err := secret.LoadOrCreateFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(ctx, store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "fabu.db")})
	if err != nil {
		t.Fatal(err)
	}
	// One row "r1" per table, then every sealed column of it holds a value sealed with the
	// old key for its place, so a column added to sealedColumns is covered here too.
	for _, q := range []string{
		`INSERT INTO projects (id, name, git_url, type, deploy_path) VALUES ('r1', 'p', '/x.git', 'static', '/srv/p')`,
		`INSERT INTO forge_connections (id, name, platform, base_url) VALUES ('r1', 'c', 'gitlab', 'https://gitlab.com')`,
		`INSERT INTO auth_signing_keys (kid, public_key, private_key_sealed) VALUES ('r1', 'pub', '')`,
		`INSERT INTO project_secrets (id, project_id, name, value_sealed, created_at, updated_at) VALUES ('r1', 'r1', 'TOKEN', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range sealedColumns {
		v, err := old.Seal([]byte("plain-"+c.table+"."+c.column), c.place("r1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE "+c.table+" SET "+c.column+" = ? WHERE "+c.id+" = 'r1'", v).Error; err != nil {
			t.Fatalf("%s.%s: %v", c.table, c.column, err)
		}
	}
	db.Close()

	t.Setenv("FABU_MASTER_KEY", "")
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"secrets", "rotate", "--embedded", "--data-dir", dir, "--new-key", "--drop-old"})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("re-sealed %d secret(s)", len(sealedColumns))) {
		t.Errorf("output %q", out.String())
	}
	fresh, err := secret.LoadOrCreateFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(keyFile)
	if keys, _ := secret.ParseKeys(string(b)); len(keys) != 1 {
		t.Errorf("key file holds %d keys after --drop-old, want 1", len(keys))
	}
	db, err = openStore(ctx, store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "fabu.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range sealedColumns {
		var v string
		if err := db.Raw("SELECT " + c.column + " FROM " + c.table).Scan(&v).Error; err != nil {
			t.Fatal(err)
		}
		got, err := fresh.Open(v, c.place("r1"))
		if err != nil || string(got) != "plain-"+c.table+"."+c.column || !fresh.Current(v) {
			t.Errorf("%s after rotation: %q %v (current %v)", c.table, got, err, fresh.Current(v))
		}
		if _, err := old.Open(v, c.place("r1")); err == nil {
			t.Errorf("%s still opens with the old key", c.table)
		}
	}
}
