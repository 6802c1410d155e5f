// Package auth is fabu's auth service: it owns users, their sessions, API tokens and the
// keys that sign access tokens. Login checks an argon2id password under rate limits and
// lockout, then issues a short-lived EdDSA access token (a JWT that every fabu process
// verifies with libs/authn) and a refresh token that is rotated on each use. The public
// keys are published as a JWKS for verifiers outside fabu.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// Roles a user can have.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Config configures the auth service. Zero values take the defaults in brackets.
type Config struct {
	Keys *secret.Keyring // seals the private signing keys; required

	AccessTTL       time.Duration // lifetime of an access token [15m]
	RefreshTTL      time.Duration // lifetime of a refresh token, renewed by each use [7 days]
	KeyRotation     time.Duration // age at which a new signing key takes over [30 days]
	MaxAPITokenDays int           // longest lifetime of an API token [365]

	// Sign-in throttling (limit.go): the LockoutFailures-th recent failure of a (user name,
	// address) pair, or of a name from every address, starts a backoff of LockoutBackoff,
	// doubled by each further failure up to LockoutDuration. A failure is forgotten
	// LockoutWindow after it, or after the backoff it caused.
	LockoutFailures int           // [5]
	LockoutWindow   time.Duration // [15m]
	LockoutBackoff  time.Duration // [1m]
	LockoutDuration time.Duration // the longest backoff [15m]
	IPBurst         int           // login attempts one client address may make at once [20]
	IPRefill        time.Duration // one more attempt per client address every … [3s]
	// TrustedProxies are the addresses (CIDR) whose X-Forwarded-For is believed — the
	// gateway, when it proxies /api/v1/auth from another process. Otherwise the connection's
	// address is the client's.
	TrustedProxies []string

	// OAuth configures sign-in through GitLab and GitHub (oauth.go); none by default.
	OAuth OAuthConfig

	Now func() time.Time // the clock; nil means time.Now
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.Keys == nil {
		return errors.New("auth: a keyring is required to seal signing keys")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, 15*time.Minute)
	def(&c.RefreshTTL, 7*24*time.Hour)
	def(&c.KeyRotation, 30*24*time.Hour)
	def(&c.LockoutWindow, 15*time.Minute)
	def(&c.LockoutDuration, 15*time.Minute)
	def(&c.LockoutBackoff, time.Minute)
	def(&c.IPRefill, 3*time.Second)
	if c.MaxAPITokenDays == 0 {
		c.MaxAPITokenDays = 365
	}
	if c.LockoutFailures == 0 {
		c.LockoutFailures = 5
	}
	if c.IPBurst == 0 {
		c.IPBurst = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LockoutBackoff > c.LockoutDuration {
		return fmt.Errorf("auth: sign-in backoff %s is longer than its cap %s", c.LockoutBackoff, c.LockoutDuration)
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > 24*time.Hour {
		return fmt.Errorf("auth: access token lifetime %s is not between a minute and a day", c.AccessTTL)
	}
	if c.RefreshTTL < c.AccessTTL {
		return fmt.Errorf("auth: refresh token lifetime %s is shorter than the access token's", c.RefreshTTL)
	}
	if c.KeyRotation < c.AccessTTL {
		return fmt.Errorf("auth: key rotation period %s is shorter than an access token's lifetime", c.KeyRotation)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("auth: trusted proxy %q: %w", p, err)
		}
	}
	return c.OAuth.validate()
}

// User is a person or robot that signs in, as stored in the users table.
type User struct {
	ID           string `gorm:"primaryKey"`
	Username     string
	PasswordHash string
	Role         string
	DisabledAt   *time.Time // set by an administrator: the user cannot sign in
	CreatedAt    time.Time
}

// TableName tells GORM the table.
func (User) TableName() string { return "users" }

// Service is the auth service.
type Service struct {
	cfg     Config
	db      *store.DB
	log     *slog.Logger
	authn   *authn.Authenticator
	signer  *signer
	limiter *ipLimiter
	proxies []netip.Prefix
	// crossOrigin refuses browsers' requests from other origins on the cookie's routes.
	crossOrigin *http.CrossOriginProtection
	// providers are the configured sign-in providers by name (oauth.go).
	providers map[string]provider
	dummy     string // a hash to check against for unknown users, so they take as long as known ones

	// checkPassword is CheckPassword; tests count its calls to prove unknown users cost
	// as much as known ones.
	checkPassword func(hash, password string) error
}

// New returns the auth service.
func New(cfg Config, db *store.DB, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dummy, err := HashPassword(randomString(16))
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, db: db, log: log, dummy: dummy, checkPassword: CheckPassword,
		authn:   authn.New(db.DB, cfg.Now),
		limiter: newIPLimiter(cfg.IPBurst, cfg.IPRefill), crossOrigin: http.NewCrossOriginProtection()}
	s.signer = &signer{s: s}
	s.providers = newProviders(cfg.OAuth, cfg.Now)
	for _, p := range cfg.TrustedProxies {
		s.proxies = append(s.proxies, netip.MustParsePrefix(p))
	}
	return s, nil
}

// Routes mounts the auth API on r.
func (s *Service) Routes(r gin.IRouter) {
	r.GET("/.well-known/jwks.json", s.jwks)
	g := r.Group("/api/v1/auth")
	g.GET("/jwks.json", s.jwks)
	// The routes that set, read or clear the refresh cookie refuse other origins (cookie.go).
	g.POST("/login", s.sameOrigin, s.login)
	g.POST("/refresh", s.sameOrigin, s.refresh)
	g.POST("/logout", s.sameOrigin, s.logout)
	g.POST("/password", s.requireSession, s.changePassword)
	g.POST("/api-tokens", s.requireTokenAdmin, s.createAPIToken)
	g.GET("/api-tokens", s.requireTokenAdmin, s.listAPITokens)
	g.DELETE("/api-tokens/:id", s.requireTokenAdmin, s.revokeAPIToken)
	s.oauthRoutes(g)
}

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}}
}

// Run makes sure a signing key exists, then rotates keys when they are due and removes
// what has expired (old keys, revocations, refresh tokens, login failures) every minute.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, _, err := s.signer.current(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("signing key", "err", err)
		}
		if err := s.prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("prune expired auth records", "err", err)
		}
		s.limiter.sweep(s.cfg.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// UserView is a user as the API shows it.
type UserView struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Role     string `json:"role"`
}

// EnsureAdmin creates user admin when there are no users yet. The password is password
// when given, otherwise a generated one that is returned so the caller can show it once.
// It returns "" when users already exist.
func (s *Service) EnsureAdmin(ctx context.Context, password string) (string, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&User{}).Count(&n).Error; err != nil {
		return "", fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	generated := password == ""
	if generated {
		password = randomString(18)
	}
	if err := CheckStrength(password); err != nil {
		return "", fmt.Errorf("FABU_ADMIN_PASSWORD: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	u := User{ID: ids.New(), Username: "admin", PasswordHash: hash, Role: RoleAdmin, CreatedAt: s.now()}
	if err := s.db.WithContext(ctx).Create(&u).Error; err != nil {
		if store.IsUniqueViolation(err) { // another process created it first
			return "", nil
		}
		return "", fmt.Errorf("create admin: %w", err)
	}
	if generated {
		return password, nil
	}
	return "", nil
}

// HashToken is how opaque tokens are stored: hex SHA-256 (authn.HashToken).
func HashToken(raw string) string { return authn.HashToken(raw) }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// principalKey holds the authenticated caller of a request.
const principalKey = "fabu.auth.principal"

// requireAuth admits a request with a valid access token or API token in the
// Authorization header, of a user who is not disabled.
func (s *Service) requireAuth(c *gin.Context) {
	if s.authenticate(c) {
		c.Next()
	}
}

// requireTokenAdmin admits API token administration: from a signed-in person's access
// token, or from an API token with the admin scope. A read, deploy or write token must not
// mint, list or revoke tokens: a leaked short-lived token would otherwise buy a long-lived one.
func (s *Service) requireTokenAdmin(c *gin.Context) {
	if !s.authenticate(c) {
		return
	}
	if p := principal(c); p.Kind != authn.KindSession && !p.Allows(authn.ScopeAdmin) {
		httpx.Fail(c, s.log, apperr.Forbidden("managing API tokens needs a token with the %q scope, or signing in", authn.ScopeAdmin))
		return
	}
	c.Next()
}

// requireSession admits only access tokens of a login, not API tokens: changing a password
// is for the person, not for a script holding a token.
func (s *Service) requireSession(c *gin.Context) {
	if !s.authenticate(c) {
		return
	}
	if principal(c).Kind != authn.KindSession {
		httpx.Fail(c, s.log, apperr.Forbidden("sign in with your password to do this; API tokens cannot"))
		return
	}
	c.Next()
}

// authenticate sets the request's principal, or answers 401 and reports false. The user is
// read again: a disabled or deleted user's credentials, an access token within its
// lifetime included, reach no route, and a demoted user's scopes shrink at once.
func (s *Service) authenticate(c *gin.Context) bool {
	raw, ok := bearer(c)
	if !ok {
		httpx.Fail(c, s.log, apperr.Unauthorized("sign in first: missing bearer token"))
		return false
	}
	ctx := c.Request.Context()
	p, err := s.authn.Authenticate(ctx, raw)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return false
	}
	var u User
	err = s.db.WithContext(ctx).Select("id, username, role, disabled_at").Where("id = ?", p.UserID).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && u.DisabledAt != nil) {
		httpx.Fail(c, s.log, apperr.Unauthorized("this account is disabled or gone"))
		return false
	}
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("load user %s: %w", p.UserID, err))
		return false
	}
	p.Role, p.Scopes = u.Role, authn.CapScopes(p.Scopes, u.Role)
	c.Set(principalKey, p)
	return true
}

func principal(c *gin.Context) authn.Principal {
	v, _ := c.Get(principalKey)
	p, _ := v.(authn.Principal)
	return p
}

// clientIP is the caller's address: the connection's, or — behind a trusted proxy — the
// last address that proxy appended to X-Forwarded-For (earlier entries are the client's
// own claims and are ignored).
func (s *Service) clientIP(c *gin.Context) string {
	remote, err := netip.ParseAddrPort(c.Request.RemoteAddr)
	if err != nil {
		return c.Request.RemoteAddr
	}
	addr := remote.Addr().Unmap()
	for _, p := range s.proxies {
		if p.Contains(addr) {
			xff := c.Request.Header.Values("X-Forwarded-For")
			if len(xff) > 0 {
				parts := strings.Split(xff[len(xff)-1], ",")
				if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
					return a.Unmap().String()
				}
			}
			break
		}
	}
	return addr.String()
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS has no randomness; nothing is safe
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// noContent answers 204.
func noContent(c *gin.Context) { c.Status(http.StatusNoContent) }
