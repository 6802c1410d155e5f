package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"fabu.dev/libs/container"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/services/auth"
	"fabu.dev/services/gateway"
)

// sealedColumn is one column of sealed values and the place each row's value is sealed for.
type sealedColumn struct {
	table, id, column string
	place             func(id string) string
}

// sealedColumns lists every value fabu seals at rest. A new sealed column must be added
// here, or key rotation would leave it on the old key (TestSealedColumnsCoverTheSchema).
var sealedColumns = []sealedColumn{
	{"projects", "id", "webhook_secret_sealed", gateway.SecretPlace},
	{"projects", "id", "docker_password_sealed", container.PasswordPlace},
	{"forge_connections", "id", "token_sealed", gateway.TokenPlace},
	{"auth_signing_keys", "kid", "private_key_sealed", auth.KeyPlace},
	{"project_secrets", "id", "value_sealed", secret.BuildSecretPlace},
	{"projects", "id", "git_credentials_sealed", secret.GitCredentialsPlace},
}

// reseal re-wraps every value not wrapped with keys' newest key, in one transaction, and
// returns how many it re-sealed. A value that does not open fails the whole rotation, so
// nothing is left half rotated.
func reseal(ctx context.Context, db *store.DB, keys *secret.Keyring) (int, error) {
	n := 0
	err := db.Tx(ctx, func(tx *gorm.DB) error {
		for _, c := range sealedColumns {
			var rows []struct{ ID, Sealed string }
			q := fmt.Sprintf("SELECT %s AS id, %s AS sealed FROM %s WHERE %s <> ''", c.id, c.column, c.table, c.column)
			if err := tx.Raw(q).Scan(&rows).Error; err != nil {
				return fmt.Errorf("read %s.%s: %w", c.table, c.column, err)
			}
			for _, r := range rows {
				if keys.Current(r.Sealed) {
					continue
				}
				// An envelope keeps its data key and ciphertext: only the data key is
				// wrapped again, under the newest key. Values of earlier versions (v1)
				// become envelopes.
				sealed, err := keys.Rewrap(r.Sealed, c.place(r.ID))
				if err != nil {
					return fmt.Errorf("%s %s: %w", c.table, r.ID, err)
				}
				u := fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", c.table, c.column, c.id)
				if err := tx.Exec(u, sealed, r.ID).Error; err != nil {
					return fmt.Errorf("update %s %s: %w", c.table, r.ID, err)
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Manage the master keys that seal stored secrets"}
	var cfg serverConfig
	var embedded, newKey, dropOld bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every stored secret with the newest master key",
		Long: `Re-seal every stored secret with the newest master key.

Distributed: put a new key first in FABU_MASTER_KEY (new,old), run this once, restart the
processes with the same value, then drop the old key. Embedded (--embedded): --new-key
adds a fresh key to <data dir>/master.key first, and --drop-old removes the old keys from
the file once everything is re-sealed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.resolve(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			sc := store.Config{Driver: store.Postgres, DSN: cfg.Postgres}
			keyFile := ""
			if embedded || cfg.Postgres == "" {
				embedded = true
				sc = store.Config{Driver: store.SQLite, DSN: filepath.Join(cfg.DataDir, "fabu.db")}
				keyFile = filepath.Join(cfg.DataDir, "master.key")
				if newKey {
					if err := prependKey(keyFile); err != nil {
						return err
					}
				}
			} else if newKey || dropOld {
				return fmt.Errorf("--new-key and --drop-old manage the embedded key file; with PostgreSQL put the new key first in FABU_MASTER_KEY")
			}
			keys, err := loadKeyring(cfg, embedded)
			if err != nil {
				return err
			}
			sc.Sealer = keys
			db, err := openStore(ctx, sc)
			if err != nil {
				return err
			}
			defer db.Close()
			n, err := reseal(ctx, db, keys)
			if err != nil {
				return fmt.Errorf("rotation rolled back, nothing changed: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d secret(s) with the newest key\n", n)
			if dropOld {
				if err := keepNewestKey(keyFile); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "old keys removed from "+keyFile)
			}
			return nil
		},
	}
	cfg.flags(rotate.Flags(), true)
	rotate.Flags().BoolVar(&embedded, "embedded", false, "rotate the embedded installation in --data-dir")
	rotate.Flags().BoolVar(&newKey, "new-key", false, "embedded: add a fresh key to master.key first")
	rotate.Flags().BoolVar(&dropOld, "drop-old", false, "embedded: remove the old keys from master.key after re-sealing")
	cmd.AddCommand(rotate)
	return cmd
}

// prependKey writes a fresh key before the existing ones, atomically.
func prependKey(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return writeKeyFile(path, secret.NewKey()+"\n"+string(old))
}

// keepNewestKey rewrites the key file with only its first key.
func keepNewestKey(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	keys, err := secret.ParseKeys(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return writeKeyFile(path, base64.StdEncoding.EncodeToString(keys[0])+"\n")
}

func writeKeyFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
