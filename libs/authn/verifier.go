package authn

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Revocations says whether an access token was revoked before its expiry.
type Revocations interface {
	Revoked(ctx context.Context, c Claims) (bool, error)
}

// Verifier checks access tokens.
type Verifier struct {
	Keys        KeySource
	Revocations Revocations      // nil: no revocation list (external verifiers without the DB)
	Now         func() time.Time // nil: time.Now
	Leeway      time.Duration    // clock skew allowed on exp and nbf; fabu uses 30s
}

// Verify returns the claims of raw if it is a fabu access token signed by a known key,
// within its validity, for issuer "fabu" and audience "fabu-api", and not revoked. Every
// failure wraps ErrInvalid except a failure to consult the keys or the revocation list.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	p, err := parse(raw)
	if err != nil {
		return Claims{}, err
	}
	pub, err := v.Keys.Key(ctx, p.header.Kid)
	if errors.Is(err, ErrUnknownKey) {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return Claims{}, err
	}
	if !ed25519.Verify(pub, []byte(p.input), p.sig) {
		return Claims{}, invalid("bad signature")
	}
	var c Claims
	if err := strictJSON(p.payload, &c); err != nil {
		return Claims{}, invalid("claims: %v", err)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	switch {
	case c.Issuer != Issuer:
		return Claims{}, invalid("issuer %q", c.Issuer)
	case !c.hasAudience(Audience):
		return Claims{}, invalid("audience %v", []string(c.Audience))
	case c.ExpiresAt == 0 || !now.Before(time.Unix(c.ExpiresAt, 0).Add(v.Leeway)):
		return Claims{}, invalid("expired")
	case c.NotBefore != 0 && now.Add(v.Leeway).Before(time.Unix(c.NotBefore, 0)):
		return Claims{}, invalid("not valid yet")
	case c.IssuedAt != 0 && now.Add(v.Leeway).Before(time.Unix(c.IssuedAt, 0)):
		return Claims{}, invalid("issued in the future")
	case c.Subject == "" || c.ID == "":
		return Claims{}, invalid("no subject or token id")
	}
	if v.Revocations != nil {
		revoked, err := v.Revocations.Revoked(ctx, c)
		if err != nil {
			return Claims{}, fmt.Errorf("check revocation of token %s: %w", c.ID, err)
		}
		if revoked {
			return Claims{}, invalid("revoked")
		}
	}
	return c, nil
}

// NewDBRevocations returns the revocation list in the database: a token is revoked when its
// jti is in auth_revoked_tokens or its login (sid) was revoked in auth_sessions (logout,
// refresh-token reuse, password change). One indexed query per token.
func NewDBRevocations(db *gorm.DB) Revocations { return dbRevocations{db} }

type dbRevocations struct{ db *gorm.DB }

func (r dbRevocations) Revoked(ctx context.Context, c Claims) (bool, error) {
	var n int64
	err := r.db.WithContext(ctx).Raw(`SELECT
		(SELECT COUNT(*) FROM auth_revoked_tokens WHERE jti = ?) +
		(SELECT COUNT(*) FROM auth_sessions WHERE id = ? AND revoked_at IS NOT NULL)`, c.ID, c.SessionID).Scan(&n).Error
	return n > 0, err
}
