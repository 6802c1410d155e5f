package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
)

// keyComment marks fabu's key in the targets' authorized_keys files.
const keyComment = "fabu"

// LoadOrCreateKey loads the OpenSSH private key at path, creating an ed25519 key there
// (mode 0600, OpenSSH PEM format) when the file does not exist. It returns the signer and
// the public key as an authorized_keys line ("ssh-ed25519 AAAA… fabu"). Concurrent callers
// end up with the same key: a new key is written to a temporary file and linked into place
// only if path is still free.
func LoadOrCreateKey(path string) (ssh.Signer, string, error) {
	pemBytes, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pemBytes, err = createKey(path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("ssh key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, "", fmt.Errorf("ssh key %s: %w", path, err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + keyComment
	return signer, line, nil
}

// LoadKey loads the OpenSSH private key at path, for a process that uses the key another
// one created (the gateway's web terminal uses the deployer's). A missing file is apperr
// CodeUnavailable; nothing is created.
func LoadKey(path string) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apperr.Unavailable("no SSH key at %s yet: a deployer creates it when it first starts", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return signer, nil
}

// createKey writes a new ed25519 key to path unless another process got there first, and
// returns the PEM bytes now at path.
func createKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, keyComment)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	pemBytes := pem.EncodeToMemory(block)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".sshkey-*") // CreateTemp makes the file 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pemBytes); err != nil {
		_ = tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	} else if err != nil {
		return nil, err
	}
	return pemBytes, nil
}
