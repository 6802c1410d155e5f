package forge

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestRawString(t *testing.T) {
	tests := []struct {
		name, json, want string
		wantErr          bool
	}{
		{"plain", `"refs/heads/main"`, "refs/heads/main", false},
		{"not UTF-8 kept byte for byte", "\"refs/heads/\xff\xfe\"", "refs/heads/\xff\xfe", false},
		{"escaped unicode decoded", `"refs/heads/\u4e2d\u6587"`, "refs/heads/中文", false},
		{"escaped slash", `"refs\/heads\/x"`, "refs/heads/x", false},
		{"a real U+FFFD, escaped", `"refs/heads/\ufffd\n"`, "refs/heads/\uFFFD\n", false},
		{"lone surrogate", `"refs/heads/\udc00x"`, "", true},
		{"null", `null`, "", false},
		{"not a string", `12`, "", true},
	}
	for _, tt := range tests {
		var r struct {
			Ref RawString `json:"ref"`
		}
		err := json.Unmarshal([]byte(`{"ref":`+tt.json+`}`), &r)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && string(r.Ref) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, r.Ref, tt.want)
		}
	}
}

// RawString agrees with encoding/json on every JSON string it returns as UTF-8, and only
// keeps bytes that are not UTF-8 as they were.
func FuzzRawString(f *testing.F) {
	for _, s := range []string{`"refs/heads/main"`, "\"\xff\"", `"\udc00"`, `"\u4e2d"`, `null`, `"a\"b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r RawString
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		var plain *string
		if err := json.Unmarshal(b, &plain); err != nil {
			t.Fatalf("RawString accepted %q, which encoding/json refuses: %v", b, err)
		}
		if utf8.ValidString(string(r)) && plain != nil && string(r) != *plain {
			t.Fatalf("RawString %q, encoding/json %q, for %q", r, *plain, b)
		}
		if !utf8.ValidString(string(r)) && bytes.IndexByte(b, '\\') >= 0 {
			t.Fatalf("RawString %q is not UTF-8 though %q was decoded", r, b)
		}
	})
}
