package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"fabu.dev/libs/secret"
)

// loadKeyring returns the master keys that seal secrets: FABU_MASTER_KEY (base64 keys,
// newest first, comma-separated), else --master-key-file, else — in embedded mode only —
// <data dir>/master.key, created on first start.
func loadKeyring(cfg serverConfig, embedded bool) (*secret.Keyring, error) {
	if v := os.Getenv("FABU_MASTER_KEY"); v != "" {
		keys, err := secret.ParseKeys(v)
		if err != nil {
			return nil, fmt.Errorf("FABU_MASTER_KEY: %w", err)
		}
		return secret.NewKeyring(keys...)
	}
	path := cfg.MasterKeyFile
	if path == "" {
		if !embedded {
			return nil, fmt.Errorf("set FABU_MASTER_KEY or --master-key-file (make a key with `fabu keygen`); every process that handles secrets needs the same keys")
		}
		path = filepath.Join(cfg.DataDir, "master.key")
	}
	if embedded {
		return secret.LoadOrCreateFile(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	keys, err := secret.ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return secret.NewKeyring(keys...)
}

func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random master key (base64) for FABU_MASTER_KEY",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), secret.NewKey())
			return err
		},
	}
}
