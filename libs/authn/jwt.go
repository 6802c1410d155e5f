// Package authn verifies the credentials fabu's auth service issues: short-lived access
// tokens (EdDSA JWTs signed with Ed25519 keys) and API tokens (opaque "fabu_…" strings stored
// as SHA-256). The auth service signs with the same token format (Sign).
//
// Keys: fabu's own processes share the database, so they read public keys from the
// auth_signing_keys table (DBKeys) — no HTTP hop, no dependency on the auth process being
// up, and a key is usable the moment the auth service commits it. Verifiers outside fabu use
// the JWKS the auth service publishes (GET /.well-known/jwks.json); JWKSKeys is such a
// client, with caching and a refresh when a token names an unknown key.
//
// Only alg "EdDSA" is accepted, whatever a token's header claims, so "none", HMAC with the
// public key as secret and RSA tokens never verify.
package authn

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Token format constants.
const (
	Algorithm = "EdDSA"
	Issuer    = "fabu"
	Audience  = "fabu-api"
	// maxTokenLen bounds what is parsed at all.
	maxTokenLen = 8 << 10
)

// ErrInvalid is the error of every token that does not verify; its wrapping says why.
var ErrInvalid = errors.New("invalid token")

// Claims are the claims of a fabu access token.
type Claims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"` // user id
	Audience  Audiences `json:"aud"`
	ExpiresAt int64     `json:"exp"`
	NotBefore int64     `json:"nbf,omitempty"`
	IssuedAt  int64     `json:"iat"`
	ID        string    `json:"jti"`
	Name      string    `json:"name"` // user name
	Role      string    `json:"role"`
	SessionID string    `json:"sid,omitempty"` // the login (refresh family) the token belongs to
}

// Audiences is the aud claim: one string or an array of them.
type Audiences []string

// MarshalJSON writes a single audience as a string.
func (a Audiences) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audiences) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	*a = many
	return nil
}

type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ,omitempty"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

var b64 = base64.RawURLEncoding.Strict()

// Sign returns the compact JWT of claims signed with key, naming kid in its header.
func Sign(key ed25519.PrivateKey, kid string, c Claims) (string, error) {
	h, err := json.Marshal(header{Alg: Algorithm, Kid: kid, Typ: "JWT"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return input + "." + b64.EncodeToString(ed25519.Sign(key, []byte(input))), nil
}

// IsJWT reports whether raw has the shape of a compact JWT (three dot-separated parts), as
// opposed to an opaque API token.
func IsJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// parsed is a token whose structure, but not yet signature, was checked.
type parsed struct {
	header  header
	input   string // header.payload, what the signature covers
	payload []byte
	sig     []byte
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func parse(raw string) (parsed, error) {
	if len(raw) > maxTokenLen {
		return parsed{}, invalid("too long")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return parsed{}, invalid("not a compact JWT")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return parsed{}, invalid("header is not base64url")
	}
	var p parsed
	if err := strictJSON(hb, &p.header); err != nil {
		return parsed{}, invalid("header: %v", err)
	}
	// The algorithm is fixed by the verifier, never chosen by the token: "none", "HS256"
	// (which would use the public key as an HMAC secret) and "RS256" are refused here.
	if p.header.Alg != Algorithm {
		return parsed{}, invalid("algorithm %q is not accepted", p.header.Alg)
	}
	if p.header.Kid == "" {
		return parsed{}, invalid("no key id")
	}
	if len(p.header.Crit) > 0 {
		return parsed{}, invalid("critical header extensions are not supported")
	}
	if p.payload, err = b64.DecodeString(parts[1]); err != nil {
		return parsed{}, invalid("payload is not base64url")
	}
	if p.sig, err = b64.DecodeString(parts[2]); err != nil || len(p.sig) != ed25519.SignatureSize {
		return parsed{}, invalid("signature is not an Ed25519 signature")
	}
	p.input = parts[0] + "." + parts[1]
	return p, nil
}

// strictJSON decodes exactly one JSON object; duplicate-free decoding is Go's default
// (last wins), which is acceptable because the bytes are signed.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func (c Claims) hasAudience(aud string) bool { return slices.Contains(c.Audience, aud) }
