package sshx_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "id_ed25519")
	signer, line, err := sshx.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey (create): %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %o, want 600", mode)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("key file is not in OpenSSH format:\n%s", pemBytes)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type = %s, want %s", signer.PublicKey().Type(), ssh.KeyAlgoED25519)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("authorized key line %q: %v", line, err)
	}
	if string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
		t.Errorf("authorized key line %q is not the signer's key", line)
	}

	again, line2, err := sshx.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey (load): %v", err)
	}
	if string(again.PublicKey().Marshal()) != string(signer.PublicKey().Marshal()) || line2 != line {
		t.Errorf("second LoadOrCreateKey returned another key: %q, want %q", line2, line)
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	lines := make([]string, 8)
	var wg sync.WaitGroup
	for i := range lines {
		wg.Go(func() {
			_, line, err := sshx.LoadOrCreateKey(path)
			if err != nil {
				t.Errorf("LoadOrCreateKey: %v", err)
			}
			lines[i] = line
		})
	}
	wg.Wait()
	for i, l := range lines {
		if l != lines[0] {
			t.Errorf("caller %d got key %q, caller 0 got %q", i, l, lines[0])
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key (temporary files left behind?)", len(entries))
	}
}

func TestLoadOrCreateKeyCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sshx.LoadOrCreateKey(path); err == nil {
		t.Fatal("LoadOrCreateKey accepted a corrupt key file")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Errorf("LoadOrCreateKey overwrote an existing file")
	}
}

func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ssh", "id_ed25519")
	if _, err := sshx.LoadKey(path); apperr.CodeOf(err) != apperr.CodeUnavailable {
		t.Fatalf("LoadKey(missing) = %v, want an unavailable error", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKey created %s (stat: %v)", path, err)
	}
	created, _, err := sshx.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := sshx.LoadKey(path)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if !bytes.Equal(loaded.PublicKey().Marshal(), created.PublicKey().Marshal()) {
		t.Error("LoadKey returned another key than the one created")
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sshx.LoadKey(path); err == nil {
		t.Error("LoadKey(corrupt) = nil error")
	}
}
