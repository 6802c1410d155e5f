package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
)

// Scopes an API token may carry. A request needs one scope (RequiredScope); "admin" allows
// everything, "write" and "deploy" include "read".
const (
	ScopeRead   = "read"   // GET requests
	ScopeDeploy = "deploy" // start runs
	ScopeWrite  = "write"  // change configuration
	ScopeAdmin  = "admin"  // everything, including user and token administration
)

// Scopes are all scopes, in order of power.
var Scopes = []string{ScopeRead, ScopeDeploy, ScopeWrite, ScopeAdmin}

// APITokenPrefix starts every API token, so leaked tokens are recognisable (secret
// scanners, log masking) and never mistaken for a JWT.
const APITokenPrefix = "fabu_"

// Token kinds of a Principal.
const (
	KindSession  = "session"   // an access token from a login
	KindAPIToken = "api_token" // an API token
)

// Principal is an authenticated caller.
type Principal struct {
	UserID    string
	Username  string
	Role      string
	Kind      string    // KindSession or KindAPIToken
	TokenID   string    // the access token's jti, or the API token's id
	SessionID string    // the login an access token belongs to
	Scopes    []string  // what the credential may do, already capped by the role
	ExpiresAt time.Time // of the credential
}

// Allows reports whether p may make a request that needs scope.
func (p Principal) Allows(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope || s == ScopeAdmin || (scope == ScopeRead && (s == ScopeWrite || s == ScopeDeploy)) {
			return true
		}
	}
	return false
}

// RoleScopes are the scopes a role grants: an administrator has all, everyone else all but
// admin. A token's scopes are capped by its user's current role.
func RoleScopes(role string) []string {
	if role == "admin" {
		return []string{ScopeAdmin}
	}
	return []string{ScopeRead, ScopeDeploy, ScopeWrite}
}

// CapScopes returns the scopes of want that role grants; "admin" means everything the
// user may do, so for a role without it, it becomes the role's scopes.
func CapScopes(want []string, role string) []string {
	grant := Principal{Scopes: RoleScopes(role)}
	var out []string
	add := func(s string) {
		if slices.Contains(Scopes, s) && grant.Allows(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range want {
		if s == ScopeAdmin && !grant.Allows(ScopeAdmin) {
			for _, r := range grant.Scopes {
				add(r)
			}
			continue
		}
		add(s)
	}
	return out
}

// HashToken is how opaque tokens (API and refresh tokens) are stored: hex SHA-256. They are
// 256-bit random values, so a fast hash is enough.
func HashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Authenticator admits access tokens and API tokens.
type Authenticator struct {
	Verifier *Verifier
	DB       *gorm.DB
}

// New returns the authenticator of fabu's processes: keys and revocations from db.
func New(db *gorm.DB, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{
		Verifier: &Verifier{Keys: NewDBKeys(db, now), Revocations: NewDBRevocations(db), Now: now, Leeway: 30 * time.Second},
		DB:       db,
	}
}

// Authenticate returns who raw belongs to. A bad, expired or revoked credential is an
// apperr unauthorized error.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (Principal, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return Principal{}, apperr.Unauthorized("sign in first: missing bearer token")
	}
	if IsJWT(raw) {
		c, err := a.Verifier.Verify(ctx, raw)
		if errors.Is(err, ErrInvalid) {
			return Principal{}, apperr.Wrap(err, apperr.CodeUnauthorized, "invalid or expired token; sign in again")
		}
		if err != nil {
			return Principal{}, err
		}
		return Principal{UserID: c.Subject, Username: c.Name, Role: c.Role, Kind: KindSession, TokenID: c.ID,
			SessionID: c.SessionID, Scopes: RoleScopes(c.Role), ExpiresAt: time.Unix(c.ExpiresAt, 0)}, nil
	}
	return a.apiToken(ctx, raw)
}

type apiTokenRow struct {
	ID         string
	UserID     string
	Username   string
	Role       string
	Scopes     string
	ExpiresAt  time.Time
	LastUsedAt *time.Time
}

func (a *Authenticator) apiToken(ctx context.Context, raw string) (Principal, error) {
	now := a.Verifier.now()
	var r apiTokenRow
	err := a.DB.WithContext(ctx).Table("auth_tokens").
		Select("auth_tokens.id, auth_tokens.user_id, users.username, users.role, auth_tokens.scopes, auth_tokens.expires_at, auth_tokens.last_used_at").
		Joins("JOIN users ON users.id = auth_tokens.user_id").
		Where("auth_tokens.token_hash = ? AND auth_tokens.expires_at > ?", HashToken(raw), now.UTC()).
		Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Principal{}, apperr.Unauthorized("invalid or expired token; sign in again")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up API token: %w", err)
	}
	// Record use at most once a minute per token, so reads do not all become writes.
	if r.LastUsedAt == nil || now.Sub(*r.LastUsedAt) > time.Minute {
		_ = a.DB.WithContext(ctx).Table("auth_tokens").Where("id = ?", r.ID).Update("last_used_at", now.UTC()).Error
	}
	return Principal{UserID: r.UserID, Username: r.Username, Role: r.Role, Kind: KindAPIToken, TokenID: r.ID,
		Scopes: CapScopes(ParseScopes(r.Scopes), r.Role), ExpiresAt: r.ExpiresAt}, nil
}

// ParseScopes reads scopes stored comma-separated.
func ParseScopes(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}
