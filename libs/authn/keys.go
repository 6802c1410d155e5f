package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"gorm.io/gorm"
)

// KeySource finds the public key a token names.
type KeySource interface {
	// Key returns the public key kid, or an error wrapping ErrUnknownKey.
	Key(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// ErrUnknownKey is the error of a key id no source knows (or knows only as expired).
var ErrUnknownKey = errors.New("unknown signing key")

// JWK is one public key of a JWKS, in RFC 8037's form for Ed25519.
type JWK struct {
	KeyType string `json:"kty"` // "OKP"
	Curve   string `json:"crv"` // "Ed25519"
	X       string `json:"x"`   // the public key, base64url
	KeyID   string `json:"kid"`
	Alg     string `json:"alg"` // "EdDSA"
	Use     string `json:"use"` // "sig"
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// NewJWK describes pub as kid.
func NewJWK(kid string, pub ed25519.PublicKey) JWK {
	return JWK{KeyType: "OKP", Curve: "Ed25519", X: b64.EncodeToString(pub), KeyID: kid, Alg: Algorithm, Use: "sig"}
}

// PublicKey returns the key of an Ed25519 JWK; other key types are refused.
func (k JWK) PublicKey() (ed25519.PublicKey, error) {
	if k.KeyType != "OKP" || k.Curve != "Ed25519" || (k.Alg != "" && k.Alg != Algorithm) {
		return nil, fmt.Errorf("key %s is %s/%s/%s, not an Ed25519 EdDSA key", k.KeyID, k.KeyType, k.Curve, k.Alg)
	}
	b, err := b64.DecodeString(k.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key %s: x is not a base64url Ed25519 public key", k.KeyID)
	}
	return ed25519.PublicKey(b), nil
}

// cache is a key set loaded from somewhere, reloaded at most every minRefresh when a token
// names a key it lacks and at least every maxAge.
type cache struct {
	load       func(ctx context.Context) (map[string]cachedKey, error)
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration

	mu       sync.Mutex
	keys     map[string]cachedKey
	loadedAt time.Time
}

type cachedKey struct {
	pub         ed25519.PublicKey
	verifyUntil time.Time // zero: no limit
}

func (c *cache) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	k, ok := c.keys[kid]
	stale := c.keys == nil || now.Sub(c.loadedAt) >= c.maxAge
	// An unknown kid triggers a reload (a key just rotated in), but at most once per
	// minRefresh, so tokens with made-up key ids cannot hammer the database or JWKS URL.
	if stale || (!ok && now.Sub(c.loadedAt) >= c.minRefresh) {
		keys, err := c.load(ctx)
		if err != nil {
			if ok { // keep verifying with what we have
				return k.pub, nil
			}
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
		c.keys, c.loadedAt = keys, now
		k, ok = keys[kid]
	}
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
	}
	if !k.verifyUntil.IsZero() && !now.Before(k.verifyUntil) {
		return nil, fmt.Errorf("%w %q: retired", ErrUnknownKey, kid)
	}
	return k.pub, nil
}

// SigningKey is a row of auth_signing_keys, as the auth service writes it.
type SigningKey struct {
	KID              string `gorm:"column:kid;primaryKey"`
	PublicKey        string // base64url
	PrivateKeySealed string
	CreatedAt        time.Time
	RetiredAt        *time.Time
	VerifyUntil      *time.Time
}

// TableName tells GORM the table.
func (SigningKey) TableName() string { return "auth_signing_keys" }

// NewDBKeys returns the key source of fabu's own processes: public keys read from the
// auth_signing_keys table, cached, reloaded every 5 minutes and — at most once a second —
// when a token names a key not in the cache. now may be nil (time.Now).
func NewDBKeys(db *gorm.DB, now func() time.Time) KeySource {
	if now == nil {
		now = time.Now
	}
	return &cache{now: now, minRefresh: time.Second, maxAge: 5 * time.Minute,
		load: func(ctx context.Context) (map[string]cachedKey, error) {
			var rows []SigningKey
			if err := db.WithContext(ctx).Select("kid, public_key, verify_until").Find(&rows).Error; err != nil {
				return nil, err
			}
			out := make(map[string]cachedKey, len(rows))
			for _, r := range rows {
				pub, err := NewJWK(r.KID, nil).withX(r.PublicKey).PublicKey()
				if err != nil {
					return nil, err
				}
				ck := cachedKey{pub: pub}
				if r.VerifyUntil != nil {
					ck.verifyUntil = *r.VerifyUntil
				}
				out[r.KID] = ck
			}
			return out, nil
		}}
}

func (k JWK) withX(x string) JWK { k.X = x; return k }

// NewJWKSKeys returns a key source for verifiers outside fabu's database: the key set at
// url (the auth service's /.well-known/jwks.json), cached for 10 minutes and fetched again
// — at most every 10 seconds — when a token names an unknown key. A key that disappears
// from the set stops verifying at the next fetch. hc may be nil.
func NewJWKSKeys(url string, hc *http.Client) KeySource {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &cache{now: time.Now, minRefresh: 10 * time.Second, maxAge: 10 * time.Minute,
		load: func(ctx context.Context) (map[string]cachedKey, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return nil, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
			}
			var set JWKS
			if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
				return nil, fmt.Errorf("decode JWKS from %s: %w", url, err)
			}
			out := map[string]cachedKey{}
			for _, k := range set.Keys {
				if pub, err := k.PublicKey(); err == nil && k.KeyID != "" {
					out[k.KeyID] = cachedKey{pub: pub}
				}
			}
			return out, nil
		}}
}
