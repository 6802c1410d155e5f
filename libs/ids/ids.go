// Package ids mints fabu's identifiers: ULIDs, 26 characters of Crockford base32 holding a
// 48-bit Unix time in milliseconds followed by 80 random bits. They sort by creation time
// (to the millisecond; IDs minted in the same millisecond are in random order), are safe in
// URLs and file names, and need no coordination between processes.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// alphabet is Crockford's base32: no I, L, O or U, so IDs survive being read aloud.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Len is the length of every ID.
const Len = 26

// New returns a fresh ID for the current time.
func New() string { return At(time.Now()) }

// At returns a fresh ID whose time part is t (to the millisecond).
func At(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	return encode(b)
}

// encode writes the 128 bits of b as 26 base32 digits, most significant first; the first
// digit holds only the top 3 bits (128 = 3 + 25*5).
func encode(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [Len]byte
	for i := Len - 1; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Valid reports whether s has the form of an ID: 26 upper-case Crockford base32 digits whose
// first digit is at most 7 (the value fits in 128 bits).
func Valid(s string) bool {
	if len(s) != Len || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if indexOf(s[i]) < 0 {
			return false
		}
	}
	return true
}

// Time returns the creation time encoded in a valid ID, to the millisecond.
func Time(id string) (time.Time, bool) {
	if !Valid(id) {
		return time.Time{}, false
	}
	var ms uint64
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(indexOf(id[i]))
	}
	return time.UnixMilli(int64(ms)), true
}

func indexOf(c byte) int {
	for i := 0; i < len(alphabet); i++ {
		if alphabet[i] == c {
			return i
		}
	}
	return -1
}
