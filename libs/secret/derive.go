package secret

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Derive returns a 32-byte key for purpose from each master key, newest first, by
// HKDF-SHA256 (no salt, info "fabu derive\x00<purpose>"). Every process with the same
// master keys derives the same keys, so a value authenticated by one process (a signed
// artifact URL, say) verifies in another or after a restart; a derived key reveals nothing
// about the master key and is useless for any other purpose. Callers sign with the first
// key and accept any of them, which keeps key rotation working.
func (k *Keyring) Derive(purpose string) [][]byte {
	out := make([][]byte, 0, len(k.raw))
	for _, key := range k.raw {
		d, err := hkdf.Key(sha256.New, key, nil, "fabu derive\x00"+purpose, 32)
		if err != nil { // only for lengths HKDF cannot produce; 32 always works
			panic(fmt.Sprintf("secret: derive %s: %v", purpose, err))
		}
		out = append(out, d)
	}
	return out
}
