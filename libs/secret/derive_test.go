package secret

import (
	"bytes"
	"testing"
)

func TestDerive(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize)
	a, err := NewKeyring(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyring(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	da, db := a.Derive("artifact-url/v1"), b.Derive("artifact-url/v1")
	if len(da) != 2 || len(da[0]) != 32 {
		t.Fatalf("Derive = %d keys of %d bytes, want 2 of 32", len(da), len(da[0]))
	}
	if !bytes.Equal(da[0], db[0]) || !bytes.Equal(da[1], db[1]) {
		t.Error("two keyrings with the same master keys derive different keys")
	}
	if bytes.Equal(da[0], da[1]) {
		t.Error("different master keys derive the same key")
	}
	if bytes.Equal(da[0], k1) || bytes.Equal(da[0], a.Derive("other")[0]) {
		t.Error("a derived key equals the master key or another purpose's key")
	}
	rotated, _ := NewKeyring(k2)
	if !bytes.Equal(rotated.Derive("artifact-url/v1")[0], da[1]) {
		t.Error("a key's derivation depends on its position in the keyring")
	}
}
