package authn

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// staticKeys is a KeySource of fixed keys.
type staticKeys map[string]ed25519.PublicKey

func (k staticKeys) Key(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if pub, ok := k[kid]; ok {
		return pub, nil
	}
	return nil, ErrUnknownKey
}

// revokedIDs is a revocation list of token ids.
type revokedIDs map[string]bool

func (r revokedIDs) Revoked(_ context.Context, c Claims) (bool, error) { return r[c.ID], nil }

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func validClaims() Claims {
	return Claims{Issuer: Issuer, Audience: Audiences{Audience}, Subject: "u1", Name: "alice", Role: "admin",
		IssuedAt: testNow.Unix(), NotBefore: testNow.Unix(), ExpiresAt: testNow.Add(15 * time.Minute).Unix(), ID: "jti-1", SessionID: "s1"}
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sign(t *testing.T, priv ed25519.PrivateKey, kid string, c Claims) string {
	t.Helper()
	tok, err := Sign(priv, kid, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge builds a token with any header and a signature made by sigFn over header.payload.
func forge(header map[string]any, c Claims, sigFn func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return input + "." + b64.EncodeToString(sigFn([]byte(input)))
}

// flip changes one character of part i (0 header, 1 payload, 2 signature) of tok.
func flip(tok string, part, at int) string {
	parts := strings.Split(tok, ".")
	b := []byte(parts[part])
	if at < 0 {
		at = len(b) + at
	}
	if b[at] == 'A' {
		b[at] = 'B'
	} else {
		b[at] = 'A'
	}
	parts[part] = string(b)
	return strings.Join(parts, ".")
}

func TestVerify(t *testing.T) {
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: staticKeys{"k1": pub, "k2": otherPub}, Revocations: revokedIDs{"revoked": true},
		Now: func() time.Time { return testNow }, Leeway: 30 * time.Second}
	good := sign(t, priv, "k1", validClaims())
	with := func(f func(*Claims)) string {
		c := validClaims()
		f(&c)
		return sign(t, priv, "k1", c)
	}
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	for _, tt := range []struct {
		name, tok, why string
	}{
		{"flipped payload byte", flip(good, 1, 10), "bad signature"},
		{"flipped last payload byte", flip(good, 1, -1), ""},
		{"flipped signature byte", flip(good, 2, 5), "bad signature"},
		{"flipped header byte", flip(good, 0, 3), ""},
		{"payload of another token", strings.Split(good, ".")[0] + "." + strings.Split(with(func(c *Claims) { c.Role = "user" }), ".")[1] + "." + strings.Split(good, ".")[2], "bad signature"},
		{"expired", with(func(c *Claims) { c.ExpiresAt = testNow.Add(-time.Minute).Unix() }), "expired"},
		{"no exp", with(func(c *Claims) { c.ExpiresAt = 0 }), "expired"},
		{"not yet valid", with(func(c *Claims) { c.NotBefore = testNow.Add(5 * time.Minute).Unix() }), "not valid yet"},
		{"issued in the future", with(func(c *Claims) { c.IssuedAt = testNow.Add(5 * time.Minute).Unix() }), "future"},
		{"wrong audience", with(func(c *Claims) { c.Audience = Audiences{"other-api"} }), "audience"},
		{"no audience", with(func(c *Claims) { c.Audience = nil }), "audience"},
		{"wrong issuer", with(func(c *Claims) { c.Issuer = "gitlab" }), "issuer"},
		{"no subject", with(func(c *Claims) { c.Subject = "" }), "subject"},
		{"revoked jti", with(func(c *Claims) { c.ID = "revoked" }), "revoked"},
		{"unknown kid", sign(t, priv, "k9", validClaims()), "unknown signing key"},
		{"no kid", forge(map[string]any{"alg": "EdDSA"}, validClaims(), func(in []byte) []byte { return ed25519.Sign(priv, in) }), "no key id"},
		{"signed by another key under k1", sign(t, otherPriv, "k1", validClaims()), "bad signature"},
		{"alg none, empty signature", forge(map[string]any{"alg": "none", "kid": "k1"}, validClaims(), func([]byte) []byte { return nil }), "algorithm"},
		{"alg none, EdDSA signature", forge(map[string]any{"alg": "none", "kid": "k1"}, validClaims(), func(in []byte) []byte { return ed25519.Sign(priv, in) }), "algorithm"},
		{"alg NONE", forge(map[string]any{"alg": "NONE", "kid": "k1"}, validClaims(), func([]byte) []byte { return nil }), "algorithm"},
		{"HS256 with the public key as secret", forge(map[string]any{"alg": "HS256", "kid": "k1"}, validClaims(), hs256(pub)), "algorithm"},
		{"HS256 with the JWK x as secret", forge(map[string]any{"alg": "HS256", "kid": "k1"}, validClaims(), hs256([]byte(NewJWK("k1", pub).X))), "algorithm"},
		{"RS256", forge(map[string]any{"alg": "RS256", "kid": "k1"}, validClaims(), func(in []byte) []byte {
			sum := sha256.Sum256(in)
			sig, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, sum[:])
			return sig
		}), "algorithm"},
		{"Ed25519 header claiming ES256", forge(map[string]any{"alg": "ES256", "kid": "k1"}, validClaims(), func(in []byte) []byte { return ed25519.Sign(priv, in) }), "algorithm"},
		{"crit header", forge(map[string]any{"alg": "EdDSA", "kid": "k1", "crit": []string{"exp"}}, validClaims(), func(in []byte) []byte { return ed25519.Sign(priv, in) }), "critical"},
		{"two parts", strings.Join(strings.Split(good, ".")[:2], "."), "compact"},
		{"padded signature", good + "==", ""},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.tok)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
			if tt.why != "" && !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Verify = %v, want it to say %q", err, tt.why)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		c, err := v.Verify(context.Background(), good)
		if err != nil || (c.Subject != "u1" || c.Name != "alice" || c.Role != "admin" || c.SessionID != "s1") {
			t.Fatalf("Verify(good) = %+v, %v", c, err)
		}
	})
	t.Run("within leeway", func(t *testing.T) {
		tok := with(func(c *Claims) {
			c.ExpiresAt = testNow.Add(-10 * time.Second).Unix()
			c.NotBefore = testNow.Add(10 * time.Second).Unix()
		})
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("Verify within 30s of leeway = %v", err)
		}
	})
	t.Run("audience array", func(t *testing.T) {
		tok := with(func(c *Claims) { c.Audience = Audiences{"other", Audience} })
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("Verify with aud [other, fabu-api] = %v", err)
		}
	})
}

func TestJWKSKeysRefreshOnUnknownKid(t *testing.T) {
	pub1, priv1 := newKey(t)
	pub2, priv2 := newKey(t)
	var set atomic.Value
	set.Store(JWKS{Keys: []JWK{NewJWK("k1", pub1)}})
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_ = json.NewEncoder(w).Encode(set.Load())
	}))
	defer srv.Close()
	keys := NewJWKSKeys(srv.URL, nil).(*cache)
	now := testNow
	keys.now = func() time.Time { return now }
	v := &Verifier{Keys: keys, Now: func() time.Time { return testNow }}
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, priv1, "k1", validClaims())); err != nil {
		t.Fatalf("k1: %v", err)
	}
	// A rotation publishes k2; a token signed with it makes the source fetch again.
	set.Store(JWKS{Keys: []JWK{NewJWK("k2", pub2), NewJWK("k1", pub1)}})
	now = now.Add(11 * time.Second)
	if _, err := v.Verify(ctx, sign(t, priv2, "k2", validClaims())); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (initial, then one for the unknown kid)", got)
	}
	// Made-up key ids do not make it fetch again within the refresh interval.
	for i := range 5 {
		if _, err := v.Verify(ctx, sign(t, priv2, "bogus"+string(rune('a'+i)), validClaims())); !errors.Is(err, ErrInvalid) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches after unknown kids = %d, want still 2", got)
	}
	// A JWKS entry that is not an Ed25519 key is ignored.
	if _, err := (JWK{KeyType: "RSA", KeyID: "r", X: NewJWK("", pub1).X}).PublicKey(); err == nil {
		t.Error("an RSA JWK was accepted as an Ed25519 key")
	}
}

func TestScopes(t *testing.T) {
	for _, tt := range []struct {
		scopes []string
		need   string
		want   bool
	}{
		{[]string{ScopeRead}, ScopeRead, true},
		{[]string{ScopeRead}, ScopeDeploy, false},
		{[]string{ScopeRead}, ScopeWrite, false},
		{[]string{ScopeDeploy}, ScopeRead, true},
		{[]string{ScopeDeploy}, ScopeWrite, false},
		{[]string{ScopeWrite}, ScopeDeploy, false},
		{[]string{ScopeAdmin}, ScopeWrite, true},
		{nil, ScopeRead, false},
	} {
		if got := (Principal{Scopes: tt.scopes}).Allows(tt.need); got != tt.want {
			t.Errorf("%v allows %s = %v, want %v", tt.scopes, tt.need, got, tt.want)
		}
	}
	if got := CapScopes([]string{ScopeRead, ScopeAdmin, ScopeRead}, "user"); strings.Join(got, ",") != "read,deploy,write" {
		t.Errorf("CapScopes(read,admin,read for a user) = %v, want [read deploy write]", got)
	}
	if got := CapScopes([]string{ScopeRead, "bogus"}, "admin"); strings.Join(got, ",") != "read" {
		t.Errorf("CapScopes(read,bogus for an admin) = %v, want [read]", got)
	}
}
