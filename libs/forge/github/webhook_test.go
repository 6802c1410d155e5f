package github

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // only to check the legacy vectors, never to verify
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

// The signature vectors of PROTOCOLS.md §0.
const (
	v1Secret = "It's a Secret to Everybody"
	v1Body   = "Hello, World!"
	v1Sig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	v2Secret = "topsecret"
	v2Sig    = "sha256=e3bfe744d4e2e29ed990bde8acfb8255ca51ef65f99657767989fb6349f32957"
	v2Sig1   = "sha1=cf93f9ba3c8d3a789e61f91e1e5c6a360d036e98"
	v3Sig    = "sha256=3bfbbc3bfc44498db2254f577b2e4bed201ece6163518ba91cb2c21f0f59d512"

	v4Secret = "0123456789abcdef"
	v4Body   = `{"yo":true}`
	v4Sig1   = "sha1=126f2c800419c60137ce748d7672e77b65cf16d6"
	v4Sig    = "sha256=b1f8020f5b4cd42042f807dd939015c4a418bc1ff7f604dd55b0a19b5d953d9b"

	v5Body = "payload=%7B%22yo%22%3Atrue%7D"
	v5Sig1 = "sha1=3374ef144403e8035423b23b02e2c9d7a4c50368"
)

func sigHeader(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

func sha1Sig(secret, body string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(body))
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	v2Body := string(testenv.Fixture(t, "github/push.go-scm.json"))
	if len(v2Body) != 8556 {
		t.Fatalf("push.go-scm.json is %d bytes, want the 8556 of vector V2", len(v2Body))
	}
	// V5's MAC covers the raw form body: its sha256 is computed here, since §0 gives only
	// the legacy sha1 (checked below), which fabu does not accept on its own.
	v5Sig := Sign(v4Secret, []byte(v5Body))

	tests := []struct {
		name   string
		header http.Header
		body   string
		secret string
		ok     bool
	}{
		{"V1 docs vector", sigHeader(HeaderSignature, v1Sig), v1Body, v1Secret, true},
		{"V2 go-scm push", sigHeader(HeaderSignature, v2Sig, headerSignature1, v2Sig1), v2Body, v2Secret, true},
		{"V3 wrong signature rejected", sigHeader(HeaderSignature, v3Sig), v2Body, v2Secret, false},
		{"V4 go-github", sigHeader(HeaderSignature, v4Sig), v4Body, v4Secret, true},
		{"V4 legacy sha1 alone rejected", sigHeader(headerSignature1, v4Sig1), v4Body, v4Secret, false},
		{"V5 form body, sha256 over the raw form", sigHeader(HeaderSignature, v5Sig, "Content-Type", contentTypeForm), v5Body, v4Secret, true},
		{"V5 MAC of the decoded JSON rejected", sigHeader(HeaderSignature, v4Sig, "Content-Type", contentTypeForm), v5Body, v4Secret, false},
		{"V5 legacy sha1 alone rejected", sigHeader(headerSignature1, v5Sig1, "Content-Type", contentTypeForm), v5Body, v4Secret, false},
		{"V1 with another secret", sigHeader(HeaderSignature, v1Sig), v1Body, "It's a secret to everybody", false},
		{"V1 with another body", sigHeader(HeaderSignature, v1Sig), v1Body + "\n", v1Secret, false},
		{"empty secret never verifies", sigHeader(HeaderSignature, Sign("", []byte(v1Body))), v1Body, "", false},
		{"no signature header", sigHeader(), v1Body, v1Secret, false},
		{"empty signature", sigHeader(HeaderSignature, ""), v1Body, v1Secret, false},
		{"sha1 prefix in the sha256 header", sigHeader(HeaderSignature, strings.Replace(v1Sig, "sha256=", "sha1=", 1)), v1Body, v1Secret, false},
		{"bare hex without prefix", sigHeader(HeaderSignature, strings.TrimPrefix(v1Sig, "sha256=")), v1Body, v1Secret, false},
		{"truncated hex", sigHeader(HeaderSignature, v1Sig[:len(v1Sig)-2]), v1Body, v1Secret, false},
		{"odd-length hex", sigHeader(HeaderSignature, v1Sig[:len(v1Sig)-1]), v1Body, v1Secret, false},
		{"trailing garbage", sigHeader(HeaderSignature, v1Sig+"00"), v1Body, v1Secret, false},
		{"non-hex", sigHeader(HeaderSignature, "sha256="+strings.Repeat("zz", 32)), v1Body, v1Secret, false},
		{"two signature headers", sigHeader(HeaderSignature, v1Sig, HeaderSignature, v1Sig), v1Body, v1Secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verifier{}.Verify(tt.header, []byte(tt.body), tt.secret, time.Now())
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, forge.ErrSignature) {
				t.Fatalf("Verify = %v, want forge.ErrSignature", err)
			}
			if got := apperr.CodeOf(err); got != apperr.CodeUnauthorized {
				t.Errorf("code = %s, want %s", got, apperr.CodeUnauthorized)
			}
		})
	}
}

// TestLegacyVectors checks the sha1 values of V2, V4 and V5 are the HMAC-SHA1 of the raw
// bodies, so the cases above that reject them reject true (if legacy) signatures.
func TestLegacyVectors(t *testing.T) {
	for _, tt := range []struct{ name, secret, body, want string }{
		{"V2", v2Secret, string(testenv.Fixture(t, "github/push.go-scm.json")), v2Sig1},
		{"V4", v4Secret, v4Body, v4Sig1},
		{"V5", v4Secret, v5Body, v5Sig1},
	} {
		if got := sha1Sig(tt.secret, tt.body); got != tt.want {
			t.Errorf("%s: sha1 = %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := Sign(v4Secret, []byte(v4Body)); got != v4Sig {
		t.Errorf("Sign(V4) = %s, want %s", got, v4Sig)
	}
	if got := Sign(v1Secret, []byte(v1Body)); got != v1Sig {
		t.Errorf("Sign(V1) = %s, want %s", got, v1Sig)
	}
}

func TestVerifyFixtureHeaders(t *testing.T) {
	body := testenv.Fixture(t, "github/push.go-scm.json")
	tests := []struct {
		headers string
		ok      bool
	}{
		{"github/push.go-scm.headers.txt", true},
		{"github/push.go-scm.badsig.headers.txt", false},
		{"github/push.go-scm.sha1.headers.txt", false}, // legacy sha1 alone is not enough
	}
	for _, tt := range tests {
		t.Run(tt.headers, func(t *testing.T) {
			h := testenv.FixtureHeaders(t, tt.headers)
			err := Verifier{}.Verify(h, body, v2Secret, time.Now())
			if tt.ok != (err == nil) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, forge.ErrSignature) {
				t.Fatalf("Verify = %v, want forge.ErrSignature", err)
			}
			if tt.ok {
				d, err := Verifier{}.Parse(h, body)
				if err != nil || d.Kind != forge.EventPush || d.Key != "ee8d97b4-1479-43f1-9cac-fbbd1b80da55" {
					t.Fatalf("Parse = %+v, %v; want a push keyed by the delivery id", d, err)
				}
			}
		})
	}
}

func TestVerifierPlatform(t *testing.T) {
	var v forge.Verifier = Verifier{}
	if v.Platform() != forge.GitHub {
		t.Errorf("Platform = %s, want %s", v.Platform(), forge.GitHub)
	}
}
