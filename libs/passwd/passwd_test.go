package passwd

import (
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

// The auth service's CheckPassword accepted this vector (salt "0123456789abcdef"), so a
// password set here signs in there.
const authVector = "$argon2id$v=19$m=65536,t=3,p=2$MDEyMzQ1Njc4OWFiY2RlZg$qoglYg7enBv91VctITWG2E/ZQv1U9p/3KxNV7gOMG9E"

func TestHashMatchesTheAuthServiceFormat(t *testing.T) {
	if got := hashWithSalt("correct horse battery", []byte("0123456789abcdef")); got != authVector {
		t.Errorf("hashWithSalt = %s, want %s", got, authVector)
	}
	a, err := Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Hash("correct horse battery")
	if a == b || !strings.HasPrefix(a, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("Hash = %s and %s, want distinct salted argon2id hashes", a, b)
	}
}

func TestCheckStrength(t *testing.T) {
	for _, tc := range []struct {
		name, pw string
		ok       bool
	}{
		{"empty", "", false},
		{"short", "abc123456", false},
		{"blank", strings.Repeat(" ", 12), false},
		{"too long", strings.Repeat("a", 257), false},
		{"ten runes", "десятьбукв", true},
		{"good", "correct horse battery", true},
	} {
		err := CheckStrength(tc.pw)
		if got := err == nil; got != tc.ok {
			t.Errorf("%s: CheckStrength = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("%s: code %s, want invalid", tc.name, apperr.CodeOf(err))
		}
	}
}

func TestCheck(t *testing.T) {
	h, err := Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(h, "correct horse battery"); err != nil {
		t.Errorf("Check(right) = %v", err)
	}
	for _, bad := range []struct{ hash, pw string }{{h, "correct horse batterx"}, {h, ""}, {"$2a$10$bcrypt", "x"}, {"", "x"}} {
		if Check(bad.hash, bad.pw) == nil {
			t.Errorf("Check(%q, %q) accepted", bad.hash, bad.pw)
		}
	}
}
