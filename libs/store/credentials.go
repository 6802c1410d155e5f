package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"

	"fabu.dev/libs/gitref"
	"fabu.dev/libs/secret"
)

// Sealer seals values at rest and opens them (*secret.Keyring is one). Migrations that move
// a secret out of a clear column into a sealed one need it; see Config.Sealer.
type Sealer interface {
	Seal(plain []byte, place string) (string, error)
	Open(sealed, place string) ([]byte, error)
}

// gitCredentialsVersion is the migration that takes credentials out of projects.git_url
// (issue 10, item 7). It is written in Go because it seals: SQL cannot.
const gitCredentialsVersion = 22

// gitCredentialsName is the name migration 22 is listed under (MigrationStatus).
const gitCredentialsName = "00022_git_credentials.go"

// errNoSealer is what a migration that must seal or open says when the process has no keys.
var errNoSealer = errors.New("projects hold repository credentials that must be sealed or opened with the master key: " +
	"run with the same master key as the services (FABU_MASTER_KEY or --master-key-file; master.key in the data dir in embedded mode)")

// gitCredentialsMigration adds projects.git_credentials_sealed and moves the user info of
// every repository URL that carries some (gitref.SplitUserinfo) into it, sealed for
// secret.GitCredentialsPlace, so GET /projects shows no token to viewers. Down puts the
// user info back into the URLs and drops the column.
func (db *DB) gitCredentialsMigration() *goose.Migration {
	up := func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE projects ADD COLUMN git_credentials_sealed TEXT NOT NULL DEFAULT ''`); err != nil {
			return fmt.Errorf("add projects.git_credentials_sealed: %w", err)
		}
		rows, err := projectURLs(ctx, tx, `SELECT id, git_url FROM projects`)
		if err != nil {
			return err
		}
		for _, r := range rows {
			bare, info := gitref.SplitUserinfo(r[1])
			if info == "" {
				continue
			}
			if db.sealer == nil {
				return errNoSealer
			}
			sealed, err := db.sealer.Seal([]byte(info), secret.GitCredentialsPlace(r[0]))
			if err != nil {
				return fmt.Errorf("seal repository credentials of project %s: %w", r[0], err)
			}
			q := db.rebind(`UPDATE projects SET git_url = ?, git_credentials_sealed = ? WHERE id = ?`)
			if _, err := tx.ExecContext(ctx, q, bare, sealed, r[0]); err != nil {
				return fmt.Errorf("move repository credentials of project %s: %w", r[0], err)
			}
		}
		return nil
	}
	down := func(ctx context.Context, tx *sql.Tx) error {
		rows, err := projectURLs(ctx, tx, `SELECT id, git_url, git_credentials_sealed FROM projects WHERE git_credentials_sealed <> ''`)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if db.sealer == nil {
				return errNoSealer
			}
			info, err := db.sealer.Open(r[2], secret.GitCredentialsPlace(r[0]))
			if err != nil {
				return fmt.Errorf("open repository credentials of project %s: %w", r[0], err)
			}
			q := db.rebind(`UPDATE projects SET git_url = ? WHERE id = ?`)
			if _, err := tx.ExecContext(ctx, q, gitref.JoinUserinfo(r[1], string(info)), r[0]); err != nil {
				return fmt.Errorf("restore repository URL of project %s: %w", r[0], err)
			}
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE projects DROP COLUMN git_credentials_sealed`); err != nil {
			return fmt.Errorf("drop projects.git_credentials_sealed: %w", err)
		}
		return nil
	}
	return goose.NewGoMigration(gitCredentialsVersion, &goose.GoFunc{RunTx: up}, &goose.GoFunc{RunTx: down})
}

// projectURLs reads every row of query, a SELECT of text columns, inside tx.
func projectURLs(ctx context.Context, tx *sql.Tx, query string) ([][]string, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read repository URLs: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("read repository URLs: %w", err)
	}
	var out [][]string
	for rows.Next() {
		r := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range r {
			ptrs[i] = &r[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read repository URLs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read repository URLs: %w", err)
	}
	return out, nil
}

// rebind turns the ? placeholders of a statement run on a bare *sql.Tx into PostgreSQL's
// $1, $2, …; SQLite takes ? as written.
func (db *DB) rebind(q string) string {
	if db.Driver != Postgres {
		return q
	}
	out, n := make([]byte, 0, len(q)+8), 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}
