// Package secret seals fabu's secrets at rest — webhook secrets, forge tokens, later SSH keys
// and channel secrets — with AES-256-GCM under a master key (DESIGN.md principle 8). A
// sealed value names the key that sealed it, so keys can be rotated: new values are sealed
// with the newest key and old ones still open until they are re-sealed. Each value is bound
// to where it is stored (the additional data, e.g. "projects/<id>/webhook_secret"), so a
// sealed value copied into another row does not open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"fabu.dev/libs/apperr"
)

// KeySize is the size of a master key: 256 bits.
const KeySize = 32

const prefix = "v1"

// Keyring holds master keys by ID; the first one seals.
type Keyring struct {
	ids  []string
	aead map[string]cipher.AEAD
	raw  [][]byte // the keys in ids order, for Derive (derive.go)
}

// keyID names a key by a short hash of it, so a sealed value says which key opens it
// without revealing anything about the key.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("fabu key id\x00"), key...))
	return hex.EncodeToString(sum[:4])
}

// NewKeyring returns a keyring of keys, the first of which seals new values.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret: no master key")
	}
	k := &Keyring{aead: map[string]cipher.AEAD{}}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("secret: master key %d has %d bytes, want %d", i+1, len(key), KeySize)
		}
		gcm, err := gcmFor(key)
		if err != nil {
			return nil, err
		}
		id := keyID(key)
		if _, dup := k.aead[id]; !dup {
			k.ids = append(k.ids, id)
			k.aead[id] = gcm
			k.raw = append(k.raw, append([]byte(nil), key...))
		}
	}
	return k, nil
}

// ParseKeys reads master keys written as base64 (standard or URL alphabet), separated by
// commas or newlines, newest first.
func ParseKeys(text string) ([][]byte, error) {
	var keys [][]byte
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' }) {
		b, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			if b, err = base64.URLEncoding.DecodeString(f); err != nil {
				return nil, fmt.Errorf("secret: master key is not base64: %w", err)
			}
		}
		keys = append(keys, b)
	}
	if len(keys) == 0 {
		return nil, errors.New("secret: no master key")
	}
	return keys, nil
}

// NewKey returns a fresh random master key, base64-encoded.
func NewKey() string {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // no randomness: nothing can be sealed safely
	}
	return base64.StdEncoding.EncodeToString(b)
}

// LoadOrCreateFile reads the master keys in path, creating it with one new key (mode 0600)
// when it does not exist — the embedded mode's default.
func LoadOrCreateFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if cerr := createKeyFile(path); cerr != nil {
			return nil, cerr
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: read %s: %w", path, err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewKeyring(keys...)
}

// createKeyFile writes a new key to a temporary file and links it into place, so that
// processes starting together agree on one key and never read a half-written file.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	f, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(NewKey() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("secret: create %s: %w", path, err)
	}
	return nil
}

// Seal encrypts plaintext for the place named by aad by envelope encryption: a fresh
// random data key encrypts the value (AES-256-GCM, aad bound), and the newest master key
// encrypts the data key (AES-256-GCM, bound to aad too). The result is
// "v2:<key id>:<wrapped data key>:<ciphertext>", each part nonce-prefixed and base64.
// Rotating the master key re-wraps only the data key (Rewrap); the ciphertext stays.
func (k *Keyring) Seal(plaintext []byte, aad string) (string, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return "", fmt.Errorf("secret: data key: %w", err)
	}
	data, err := gcmFor(dek)
	if err != nil {
		return "", err
	}
	ct, err := sealWith(data, plaintext, []byte(aad))
	if err != nil {
		return "", err
	}
	return k.wrap(dek, aad, base64.RawStdEncoding.EncodeToString(ct))
}

// wrap seals data key dek with the newest master key and joins it to the encoded
// ciphertext ct.
func (k *Keyring) wrap(dek []byte, aad, ct string) (string, error) {
	id := k.ids[0]
	wrapped, err := sealWith(k.aead[id], dek, wrapAAD(aad))
	if err != nil {
		return "", err
	}
	return envelope + ":" + id + ":" + base64.RawStdEncoding.EncodeToString(wrapped) + ":" + ct, nil
}

// envelope is the format of values sealed with a data key; prefix ("v1") values were
// sealed directly with the master key by earlier versions and still open.
const envelope = "v2"

// wrapAAD binds a wrapped data key to its place, so a wrapped key moved to another row
// does not open either.
func wrapAAD(aad string) []byte { return []byte("fabu data key\x00" + aad) }

func gcmFor(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return gcm, nil
}

// sealWith encrypts plaintext under gcm with a random nonce, which it puts first.
func sealWith(gcm cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: nonce: %w", err)
	}
	return gcm.Seal(nonce, nonce, plaintext, aad), nil
}

// openWith decrypts a nonce-prefixed, base64 ciphertext under gcm.
func openWith(gcm cipher.AEAD, b64 string, aad []byte) ([]byte, error) {
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(ct) < gcm.NonceSize()+gcm.Overhead() {
		return nil, fmt.Errorf("%w: damaged", ErrOpen)
	}
	pt, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: damaged or sealed for another place", ErrOpen)
	}
	return pt, nil
}

// ErrOpen is the error of a sealed value that does not open: damaged, moved to another
// place, or sealed with a key this keyring lacks.
var ErrOpen = errors.New("secret: sealed value does not open")

// Open decrypts a value sealed for aad: an envelope (v2) or, from earlier versions, a value
// sealed directly with a master key (v1).
func (k *Keyring) Open(sealed, aad string) ([]byte, error) {
	if strings.HasPrefix(sealed, envelope+":") {
		dek, ct, err := k.unwrap(sealed, aad)
		if err != nil {
			return nil, err
		}
		data, err := gcmFor(dek)
		if err != nil {
			return nil, err
		}
		return openWith(data, ct, []byte(aad))
	}
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != prefix {
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	}
	gcm, ok := k.aead[parts[1]]
	if !ok {
		return nil, fmt.Errorf("%w: sealed with key %s, which is not configured", ErrOpen, parts[1])
	}
	return openWith(gcm, parts[2], []byte(aad))
}

// unwrap opens the data key of envelope sealed and returns it with the encoded ciphertext.
func (k *Keyring) unwrap(sealed, aad string) (dek []byte, ct string, err error) {
	parts := strings.Split(sealed, ":")
	if len(parts) != 4 || parts[0] != envelope {
		return nil, "", fmt.Errorf("%w: unknown format", ErrOpen)
	}
	gcm, ok := k.aead[parts[1]]
	if !ok {
		return nil, "", fmt.Errorf("%w: sealed with key %s, which is not configured", ErrOpen, parts[1])
	}
	dek, err = openWith(gcm, parts[2], wrapAAD(aad))
	if err != nil {
		return nil, "", err
	}
	if len(dek) != KeySize {
		return nil, "", fmt.Errorf("%w: damaged data key", ErrOpen)
	}
	return dek, parts[3], nil
}

// Rewrap returns sealed under the newest master key. An envelope keeps its data key and
// ciphertext: only the data key is decrypted and encrypted again. A v1 value is opened
// and sealed anew as an envelope. The value must open for aad.
func (k *Keyring) Rewrap(sealed, aad string) (string, error) {
	if !strings.HasPrefix(sealed, envelope+":") {
		plain, err := k.Open(sealed, aad)
		if err != nil {
			return "", err
		}
		return k.Seal(plain, aad)
	}
	dek, ct, err := k.unwrap(sealed, aad)
	if err != nil {
		return "", err
	}
	data, err := gcmFor(dek)
	if err != nil {
		return "", err
	}
	if _, err := openWith(data, ct, []byte(aad)); err != nil { // never re-wrap a damaged value
		return "", err
	}
	return k.wrap(dek, aad, ct)
}

// Current reports whether sealed is an envelope wrapped with the newest key; other values
// (older keys, or v1) are re-wrapped by key rotation.
func (k *Keyring) Current(sealed string) bool {
	return strings.HasPrefix(sealed, envelope+":"+k.ids[0]+":")
}

// Unavailable wraps ErrOpen for API callers: the secret exists but cannot be used now.
func Unavailable(err error) error {
	return apperr.Wrap(err, apperr.CodeUnavailable, "a stored secret cannot be opened with the configured master key")
}
