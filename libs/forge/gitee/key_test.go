package gitee

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

// percentVariants returns token with, in turn, each of its characters percent-encoded, in
// upper- and lower-case hex, and the URL-encoded form Gitee's documentation describes.
func percentVariants(token string) []string {
	out := []string{url.QueryEscape(token)}
	for i := 0; i < len(token); i++ {
		for _, f := range []string{"%%%02X", "%%%02x"} {
			out = append(out, token[:i]+fmt.Sprintf(f, token[i])+token[i+1:])
		}
	}
	return out
}

// Verify accepts a signature percent-encoded; the delivery key must then be the key of the
// plain signature, or a captured delivery could be replayed with another body by encoding
// one character of its token (issue 10 item 8).
func TestKeyOfEncodedSignatureIsThePlainKey(t *testing.T) {
	const secret = "gitee-secret"
	now := time.Now()
	ts := fmt.Sprint(now.UnixMilli())
	token := Sign(secret, ts)
	want := Verifier{}.key(signed(ts, token), []byte(`{"a":1}`))
	for _, v := range percentVariants(token) {
		h := signed(ts, v)
		if err := (Verifier{}).Verify(h, nil, secret, now); err != nil {
			continue // only the variants Verify accepts matter
		}
		if got := (Verifier{}).key(h, []byte(`{"other":"body"}`)); got != want {
			t.Errorf("key with token %q = %q, want the plain token's %q", v, got, want)
		}
	}
	accepted := 0
	for _, v := range percentVariants(token) {
		if (Verifier{}).Verify(signed(ts, v), nil, secret, now) == nil {
			accepted++
		}
	}
	if accepted == 0 {
		t.Fatal("no percent-encoded variant verifies; the test checks nothing")
	}
}
