package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustKeyring(t *testing.T, keys ...string) *Keyring {
	t.Helper()
	var bs [][]byte
	for _, k := range keys {
		p, err := ParseKeys(k)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, p...)
	}
	k, err := NewKeyring(bs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKeyring(t, NewKey())
	s, err := k.Seal([]byte("webhook-secret"), "projects/1/webhook_secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "webhook-secret") || !strings.HasPrefix(s, "v2:") || len(strings.Split(s, ":")) != 4 {
		t.Fatalf("sealed value %q, want an envelope v2:<key id>:<wrapped data key>:<ciphertext>", s)
	}
	again, _ := k.Seal([]byte("webhook-secret"), "projects/1/webhook_secret")
	if again == s {
		t.Error("sealing twice gave the same value: nonce reused")
	}
	got, err := k.Open(s, "projects/1/webhook_secret")
	if err != nil || string(got) != "webhook-secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	p, q := strings.Split(s, ":"), strings.Split(again, ":")
	bad := []struct{ name, sealed, aad string }{
		{"other place", s, "projects/2/webhook_secret"},
		{"flipped byte", s[:len(s)-2] + string(rune(s[len(s)-2]^1)) + s[len(s)-1:], "projects/1/webhook_secret"},
		{"flipped byte in the data key", p[0] + ":" + p[1] + ":" + p[2][:5] + string(rune(p[2][5]^1)) + p[2][6:] + ":" + p[3], "projects/1/webhook_secret"},
		{"data key of another value", p[0] + ":" + p[1] + ":" + q[2] + ":" + p[3], "projects/1/webhook_secret"},
		{"truncated", s[:12], "projects/1/webhook_secret"},
		{"unknown key", "v2:deadbeef:" + p[2] + ":" + p[3], "projects/1/webhook_secret"},
		{"v1 label on an envelope", "v1:" + p[1] + ":" + p[3], "projects/1/webhook_secret"},
		{"plaintext", "webhook-secret", "projects/1/webhook_secret"},
	}
	for _, tt := range bad {
		if _, err := k.Open(tt.sealed, tt.aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %v, want ErrOpen", tt.name, err)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := NewKey(), NewKey()
	old := mustKeyring(t, oldKey)
	s, _ := old.Seal([]byte("x"), "a")
	rotated := mustKeyring(t, newKey+","+oldKey)
	if got, err := rotated.Open(s, "a"); err != nil || string(got) != "x" {
		t.Fatalf("a value sealed with the old key = %q, %v after rotation", got, err)
	}
	if rotated.Current(s) {
		t.Error("a value sealed with the old key counts as current")
	}
	s2, _ := rotated.Seal([]byte("x"), "a")
	if !rotated.Current(s2) {
		t.Error("a value sealed after rotation is not current")
	}
	if _, err := old.Open(s2, "a"); !errors.Is(err, ErrOpen) {
		t.Error("the old keyring opened a value sealed with the new key")
	}
}

// sealV1 seals as fabu did before envelopes: directly with the newest master key.
func sealV1(t *testing.T, k *Keyring, plaintext, aad string) string {
	t.Helper()
	ct, err := sealWith(k.aead[k.ids[0]], []byte(plaintext), []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	return "v1:" + k.ids[0] + ":" + base64.RawStdEncoding.EncodeToString(ct)
}

// TestRewrap: rotation re-wraps an envelope's data key under the newest master key and
// keeps its ciphertext; a v1 value becomes an envelope; a damaged value is refused.
func TestRewrap(t *testing.T) {
	oldKey, newKey := NewKey(), NewKey()
	old := mustKeyring(t, oldKey)
	s, err := old.Seal([]byte("token-value"), "forge_connections/c1/token")
	if err != nil {
		t.Fatal(err)
	}
	v1 := sealV1(t, old, "legacy-value", "projects/p1/webhook_secret")
	if got, err := old.Open(v1, "projects/p1/webhook_secret"); err != nil || string(got) != "legacy-value" {
		t.Fatalf("a v1 value = %q, %v; want it to open", got, err)
	}
	if old.Current(v1) {
		t.Error("a v1 value counts as current: rotation would never make it an envelope")
	}
	rotated := mustKeyring(t, newKey+","+oldKey)
	r, err := rotated.Rewrap(s, "forge_connections/c1/token")
	if err != nil {
		t.Fatal(err)
	}
	if !rotated.Current(r) || strings.Split(r, ":")[3] != strings.Split(s, ":")[3] {
		t.Errorf("rewrapped %q from %q: want the new key's id and the same ciphertext", r, s)
	}
	onlyNew := mustKeyring(t, newKey)
	if got, err := onlyNew.Open(r, "forge_connections/c1/token"); err != nil || string(got) != "token-value" {
		t.Errorf("rewrapped value opens with the new key alone = %q, %v", got, err)
	}
	if _, err := rotated.Rewrap(s, "forge_connections/c2/token"); !errors.Is(err, ErrOpen) {
		t.Errorf("Rewrap for another place = %v, want ErrOpen", err)
	}
	u, err := rotated.Rewrap(v1, "projects/p1/webhook_secret")
	if err != nil || !strings.HasPrefix(u, "v2:") || !rotated.Current(u) {
		t.Fatalf("Rewrap of a v1 value = %q, %v; want a current envelope", u, err)
	}
	if got, err := onlyNew.Open(u, "projects/p1/webhook_secret"); err != nil || string(got) != "legacy-value" {
		t.Errorf("upgraded v1 value = %q, %v", got, err)
	}
	p := strings.Split(s, ":")
	damaged := strings.Join([]string{p[0], p[1], p[2], p[3][:4] + string(rune(p[3][4]^1)) + p[3][5:]}, ":")
	if _, err := rotated.Rewrap(damaged, "forge_connections/c1/token"); !errors.Is(err, ErrOpen) {
		t.Errorf("Rewrap of a damaged ciphertext = %v, want ErrOpen (never re-wrap what does not open)", err)
	}
}

func TestKeyValidation(t *testing.T) {
	for _, k := range []string{"", "not base64!", "c2hvcnQ="} {
		keys, err := ParseKeys(k)
		if err == nil {
			_, err = NewKeyring(keys...)
		}
		if err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

func TestLoadOrCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	var wg sync.WaitGroup
	rings := make([]*Keyring, 4)
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateFile(path)
			if err != nil {
				t.Error(err)
			}
			rings[i] = k
		}()
	}
	wg.Wait()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v, want mode 0600", fi, err)
	}
	s, _ := rings[0].Seal([]byte("same key everywhere"), "a")
	for i, k := range rings {
		if got, err := k.Open(s, "a"); err != nil || !bytes.Equal(got, []byte("same key everywhere")) {
			t.Errorf("keyring %d made concurrently differs: %v", i, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := NewKeyring(bytes.Repeat([]byte{7}, KeySize))
	s, _ := k.Seal([]byte("secret"), "a")
	f.Add(s, "a")
	f.Add("v1::", "")
	f.Add("v2:::", "")
	f.Fuzz(func(t *testing.T, sealed, aad string) {
		got, err := k.Open(sealed, aad)
		if err == nil && (sealed != s || aad != "a") && string(got) == "secret" {
			// Only a real sealing of "secret" for "a" may open to it; GCM forgery is not expected.
			if !strings.HasPrefix(sealed, "v2:") {
				t.Fatalf("opened %q", sealed)
			}
		}
	})
}
