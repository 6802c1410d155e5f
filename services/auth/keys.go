package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
)

// keyReload is how long a process signs with the key it loaded before looking for a newer
// one (another auth process may have rotated).
const keyReload = time.Minute

// signer holds the key this process signs with.
type signer struct {
	s *Service

	mu       sync.Mutex
	kid      string
	priv     ed25519.PrivateKey
	created  time.Time
	loadedAt time.Time
}

// KeyPlace is where a signing key's private half is sealed for.
func KeyPlace(kid string) string { return "auth_keys/" + kid }

// current returns the signing key, loading the newest active one from the database, and
// rotating first when there is none or it is older than KeyRotation.
func (g *signer) current(ctx context.Context) (string, ed25519.PrivateKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.s.now()
	if g.priv != nil && now.Sub(g.loadedAt) < keyReload && now.Sub(g.created) < g.s.cfg.KeyRotation {
		return g.kid, g.priv, nil
	}
	var k authn.SigningKey
	err := g.s.db.WithContext(ctx).Where("retired_at IS NULL").Order("created_at DESC, kid DESC").Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && now.Sub(k.CreatedAt) >= g.s.cfg.KeyRotation) {
		k, err = g.s.rotate(ctx)
	}
	if err != nil {
		return "", nil, fmt.Errorf("signing key: %w", err)
	}
	seed, err := g.s.cfg.Keys.Open(k.PrivateKeySealed, KeyPlace(k.KID))
	if err != nil {
		return "", nil, secret.Unavailable(fmt.Errorf("open signing key %s: %w", k.KID, err))
	}
	if len(seed) != ed25519.SeedSize {
		return "", nil, fmt.Errorf("signing key %s: sealed seed has %d bytes", k.KID, len(seed))
	}
	g.kid, g.priv, g.created, g.loadedAt = k.KID, ed25519.NewKeyFromSeed(seed), k.CreatedAt, now
	return g.kid, g.priv, nil
}

// forget makes the next signature load the key from the database.
func (g *signer) forget() {
	g.mu.Lock()
	g.priv = nil
	g.mu.Unlock()
}

// RotateKey makes a new signing key the one that signs. Older keys stop signing and keep
// verifying until every access token they signed has expired.
func (s *Service) RotateKey(ctx context.Context) (string, error) {
	k, err := s.rotate(ctx)
	if err != nil {
		return "", err
	}
	s.signer.forget()
	return k.KID, nil
}

func (s *Service) rotate(ctx context.Context) (authn.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return authn.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kid := randomString(12)
	sealed, err := s.cfg.Keys.Seal(priv.Seed(), KeyPlace(kid))
	if err != nil {
		return authn.SigningKey{}, err
	}
	now := s.now()
	k := authn.SigningKey{KID: kid, PublicKey: authn.NewJWK(kid, pub).X, PrivateKeySealed: sealed, CreatedAt: now}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&k).Error; err != nil {
			return err
		}
		// Only keys older than the new one retire, so two auth processes rotating at once
		// do not retire each other's new key; the newest signs.
		return tx.Model(&authn.SigningKey{}).Where("retired_at IS NULL AND created_at <= ? AND kid <> ?", now, kid).
			Updates(map[string]any{"retired_at": now, "verify_until": now.Add(s.cfg.AccessTTL + time.Minute)}).Error
	})
	if err != nil {
		return authn.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	s.log.Info("new signing key", "kid", kid)
	return k, nil
}

// JWKS returns the public keys that verify tokens now: the signing key and retired keys
// whose tokens may not have expired yet.
func (s *Service) JWKS(ctx context.Context) (authn.JWKS, error) {
	var rows []authn.SigningKey
	err := s.db.WithContext(ctx).Select("kid, public_key, created_at").
		Where("verify_until IS NULL OR verify_until > ?", s.now()).Order("retired_at IS NOT NULL, created_at DESC, kid DESC").Find(&rows).Error
	if err != nil {
		return authn.JWKS{}, fmt.Errorf("load public keys: %w", err)
	}
	set := authn.JWKS{Keys: []authn.JWK{}}
	for _, r := range rows {
		set.Keys = append(set.Keys, authn.JWK{KeyType: "OKP", Curve: "Ed25519", X: r.PublicKey, KeyID: r.KID, Alg: authn.Algorithm, Use: "sig"})
	}
	return set, nil
}

func (s *Service) jwks(c *gin.Context) {
	if _, _, err := s.signer.current(c.Request.Context()); err != nil { // the first start publishes a key at once
		httpx.Fail(c, s.log, err)
		return
	}
	set, err := s.JWKS(c.Request.Context())
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, set)
}

// prune removes what can no longer matter: keys past verification, revocations of expired
// tokens, expired refresh tokens and sessions, and login failures outside any window.
func (s *Service) prune(ctx context.Context) error {
	now := s.now()
	db := s.db.WithContext(ctx)
	return errors.Join(
		db.Where("verify_until IS NOT NULL AND verify_until < ?", now).Delete(&authn.SigningKey{}).Error,
		db.Exec("DELETE FROM auth_revoked_tokens WHERE expires_at < ?", now).Error,
		db.Exec("DELETE FROM auth_refresh_tokens WHERE expires_at < ?", now).Error,
		// A revoked session stays until its access tokens have expired, so they keep failing.
		db.Exec("DELETE FROM auth_sessions WHERE expires_at < ?", now.Add(-s.cfg.AccessTTL)).Error,
		// Sign-in failures are forgotten LockoutWindow after the last one or the wait it caused (limit.go).
		db.Exec("DELETE FROM auth_login_failures WHERE COALESCE(locked_until, last_failure_at, window_start) < ?",
			now.Add(-s.cfg.LockoutWindow)).Error,
		db.Exec("DELETE FROM auth_login_throttle WHERE COALESCE(blocked_until, last_failure_at) < ?",
			now.Add(-s.cfg.LockoutWindow)).Error,
		db.Exec("DELETE FROM auth_oauth_flows WHERE expires_at < ? AND (code_expires_at IS NULL OR code_expires_at < ?)", now, now).Error,
	)
}
