package ids

import (
	"testing"
	"time"
)

func TestEncodeKnownValues(t *testing.T) {
	tests := []struct {
		name string
		in   [16]byte
		want string
	}{
		{"zero", [16]byte{}, "00000000000000000000000000"},
		{"max", [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{"one", [16]byte{15: 1}, "00000000000000000000000001"},
		{"thirty-two", [16]byte{15: 32}, "00000000000000000000000010"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(tt.in); got != tt.want {
				t.Errorf("encode(%x) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// The time part matches the ULID specification's example: 1469918176385 ms is 01ARYZ6S41.
func TestAtEncodesTimeLikeULID(t *testing.T) {
	id := At(time.UnixMilli(1469918176385))
	if got, want := id[:10], "01ARYZ6S41"; got != want {
		t.Errorf("time part = %s, want %s", got, want)
	}
	got, ok := Time(id)
	if !ok || got.UnixMilli() != 1469918176385 {
		t.Errorf("Time(%s) = %v, %v; want 1469918176385 ms", id, got.UnixMilli(), ok)
	}
}

func TestNewIsValidUniqueAndSortsByTime(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New()
		if !Valid(id) {
			t.Fatalf("New() = %q is not valid", id)
		}
		if seen[id] {
			t.Fatalf("New() returned %s twice", id)
		}
		seen[id] = true
	}
	base := time.Now()
	earlier, later := At(base), At(base.Add(time.Millisecond))
	if !(earlier < later) {
		t.Errorf("ID of %v (%s) does not sort before ID one millisecond later (%s)", base, earlier, later)
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"01ARYZ6S41TSV4RRFFQ69G5FAV", true},
		{"01ARYZ6S41TSV4RRFFQ69G5FA", false},   // 25 characters
		{"01ARYZ6S41TSV4RRFFQ69G5FAVX", false}, // 27 characters
		{"81ARYZ6S41TSV4RRFFQ69G5FAV", false},  // overflows 128 bits
		{"01ARYZ6S41TSV4RRFFQ69G5FAU", false},  // U is not Crockford
		{"01aryz6s41tsv4rrffq69g5fav", false},  // lower case is not what New mints
		{"", false},
	}
	for _, tt := range tests {
		if got := Valid(tt.in); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
