package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// oauthFlow is a row of auth_oauth_flows: one browser's sign-in or link attempt.
type oauthFlow struct {
	ID            string `gorm:"primaryKey"`
	HandleHash    string
	Provider      string
	Purpose       string
	State         string
	Nonce         string
	Redirect      string
	UserID        *string
	SessionID     string
	ExpiresAt     time.Time
	CallbackAt    *time.Time
	CodeHash      *string
	CodeExpiresAt *time.Time
	ExchangedAt   *time.Time
	CreatedAt     time.Time
}

func (oauthFlow) TableName() string { return "auth_oauth_flows" }

const (
	purposeLogin = "login"
	purposeLink  = "link"

	// flowCookie holds the flow's random handle, only for the sign-in endpoints.
	flowCookie     = "fabu_oauth"
	flowCookiePath = "/api/v1/auth/oauth"
)

// pkceVerifier derives the PKCE code verifier from the cookie's handle, so the database
// never holds it: 43 characters of base64url, as RFC 7636 asks.
func pkceVerifier(handle string) string {
	m := hmac.New(sha256.New, []byte(handle))
	m.Write([]byte("fabu oauth pkce verifier"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// redirectTarget accepts a path inside the SPA to return to after signing in: it starts
// with one slash, is not a protocol-relative or backslash URL, has no control characters and
// parses as a URL of this origin.
func redirectTarget(v string) string {
	if v == "" || len(v) > 512 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsRune(v, '\\') ||
		strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "/projects"
	}
	if u, err := url.Parse(v); err != nil || u.Scheme != "" || u.Host != "" {
		return "/projects"
	}
	return v
}

func (s *Service) provider(c *gin.Context) (provider, bool) {
	p, ok := s.providers[c.Param("provider")]
	if !ok {
		httpx.Fail(c, s.log, apperr.NotFound("no sign-in provider %q is configured", c.Param("provider")))
	}
	return p, ok
}

// beginFlow stores a new flow, sets its cookie and returns the provider's sign-in URL.
func (s *Service) beginFlow(c *gin.Context, p provider, f oauthFlow) (string, error) {
	handle := randomString(32)
	now := s.now()
	f.ID, f.HandleHash, f.Provider = ids.New(), HashToken(handle), p.config().Name
	f.State, f.Nonce = randomString(32), randomString(32)
	f.ExpiresAt, f.CreatedAt = now.Add(s.cfg.OAuth.FlowTTL), now
	u, err := p.authCodeURL(c.Request.Context(), f.State, f.Nonce, pkceVerifier(handle))
	if err != nil {
		return "", err
	}
	if err := s.db.WithContext(c.Request.Context()).Create(&f).Error; err != nil {
		return "", fmt.Errorf("store sign-in flow: %w", err)
	}
	s.setFlowCookie(c, handle, s.cfg.OAuth.FlowTTL)
	return u, nil
}

func (s *Service) setFlowCookie(c *gin.Context, value string, ttl time.Duration) {
	maxAge := int(ttl / time.Second)
	if ttl < 0 {
		maxAge = -1
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: flowCookie, Value: value, Path: flowCookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: strings.HasPrefix(s.cfg.OAuth.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
}

// oauthStart sends the browser to the provider to sign in.
func (s *Service) oauthStart(c *gin.Context) {
	p, ok := s.provider(c)
	if !ok {
		return
	}
	if wait, ok := s.limiter.take(s.clientIP(c), s.cfg.Now()); !ok {
		tooMany(c, wait, "too many sign-in attempts from your address")
		return
	}
	u, err := s.beginFlow(c, p, oauthFlow{Purpose: purposeLogin, Redirect: redirectTarget(c.Query("redirect"))})
	if err != nil {
		s.log.Warn("sign-in provider", "provider", p.config().Name, "err", err)
		c.Redirect(http.StatusFound, "/login#oauth_error=provider")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, u)
}

// LinkStart is where the browser goes to link an identity.
type LinkStart struct {
	URL string `json:"url"`
}

// oauthLink starts linking an identity to the signed-in user: the answer sets the flow's
// cookie, and the SPA sends the browser to the URL.
func (s *Service) oauthLink(c *gin.Context) {
	p, ok := s.provider(c)
	if !ok {
		return
	}
	pr := principal(c)
	uid := pr.UserID
	u, err := s.beginFlow(c, p, oauthFlow{Purpose: purposeLink, UserID: &uid, SessionID: pr.SessionID, Redirect: "/account"})
	if err != nil {
		if errors.Is(err, errProvider) {
			s.log.Warn("sign-in provider", "provider", p.config().Name, "err", err)
			err = apperr.Unavailable("the sign-in provider %s cannot be reached; try again later", p.config().Name)
		}
		httpx.Fail(c, s.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, LinkStart{URL: u})
}

// flowError is a refused or failed callback: what the browser is told (a short code the
// SPA translates), what the audit log records, and the audit outcome.
type flowError struct {
	code    string
	reason  string
	outcome string
	err     error // the cause, for the server's log
}

func (e *flowError) Error() string { return e.reason }

func refuse(code, reason string) *flowError {
	return &flowError{code: code, reason: reason, outcome: audit.Refused}
}

// oauthCallback is where the provider sends the browser back.
func (s *Service) oauthCallback(c *gin.Context) {
	p, ok := s.provider(c)
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	name := p.config().Name
	if _, ok := s.limiter.take(s.clientIP(c), s.cfg.Now()); !ok {
		s.record(c, audit.Entry{Action: "auth.oauth.login", Target: "user", Outcome: audit.Refused,
			Detail: map[string]any{"provider": name, "reason": "too many sign-in attempts from this address"}})
		c.Redirect(http.StatusFound, "/login#oauth_error=rate_limited")
		return
	}
	f, id, err := s.callback(c, p)
	purpose := purposeLogin
	if f.Purpose != "" {
		purpose = f.Purpose
	}
	var fe *flowError
	if err != nil && !errors.As(err, &fe) {
		fe = &flowError{code: "internal", reason: "internal error", outcome: audit.Failed, err: err}
		if errors.Is(err, errProvider) {
			fe = &flowError{code: "provider", reason: "the provider's answer was not accepted", outcome: audit.Refused, err: err}
		}
	}
	page := "/login"
	if purpose == purposeLink {
		page = "/account"
	}
	if fe != nil {
		if fe.err != nil {
			s.log.Warn("sign-in through provider refused", "provider", name, "reason", fe.reason, "err", fe.err)
		}
		action := "auth.oauth.login"
		if purpose == purposeLink {
			action = "auth.oauth.link"
		}
		e := audit.Entry{Action: action, Target: "identity", TargetID: identityTarget(name, id.Subject), Outcome: fe.outcome,
			Detail: map[string]any{"provider": name, "reason": fe.reason}}
		if id.Login != "" {
			e.Detail["login"] = id.Login
		}
		if f.UserID != nil && purpose == purposeLink {
			e.ActorID = *f.UserID
		}
		s.record(c, e)
		s.setFlowCookie(c, "", -1)
		c.Redirect(http.StatusFound, page+"#oauth_error="+url.QueryEscape(fe.code))
		return
	}
	if purpose == purposeLink {
		s.setFlowCookie(c, "", -1)
		c.Redirect(http.StatusFound, "/account#oauth_linked="+url.QueryEscape(name))
		return
	}
	// A sign-in: the SPA exchanges this code, with the cookie, for its tokens.
	code := randomString(32)
	now := s.now()
	err = s.db.WithContext(c.Request.Context()).Model(&oauthFlow{}).Where("id = ?", f.ID).
		Updates(map[string]any{"code_hash": HashToken(code), "code_expires_at": now.Add(s.cfg.OAuth.CodeTTL)}).Error
	if err != nil {
		s.log.Error("store one-time sign-in code", "err", err)
		c.Redirect(http.StatusFound, "/login#oauth_error=internal")
		return
	}
	c.Redirect(http.StatusFound, "/login#oauth_code="+code)
}

func identityTarget(provider, subject string) string {
	if subject == "" {
		return provider
	}
	return provider + ":" + subject
}

// callback checks the flow of the request's cookie and state, has the provider say who
// signed in, and links or signs in that identity. It returns the flow (its Purpose may be
// empty when none was found) and the identity (empty before the provider was asked).
func (s *Service) callback(c *gin.Context, p provider) (oauthFlow, identity, error) {
	ctx := c.Request.Context()
	handle, err := c.Cookie(flowCookie)
	if err != nil || handle == "" || len(handle) > 128 {
		return oauthFlow{}, identity{}, refuse("expired", "no sign-in in progress in this browser (cookie missing or expired)")
	}
	var f oauthFlow
	err = s.db.WithContext(ctx).Where("handle_hash = ? AND provider = ?", HashToken(handle), p.config().Name).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return oauthFlow{}, identity{}, refuse("expired", "no sign-in in progress in this browser (unknown flow)")
	}
	if err != nil {
		return oauthFlow{}, identity{}, fmt.Errorf("load sign-in flow: %w", err)
	}
	now := s.now()
	// The state is used once, whatever happens next: a replayed or forged callback finds it
	// spent.
	res := s.db.WithContext(ctx).Model(&oauthFlow{}).Where("id = ? AND callback_at IS NULL AND expires_at > ?", f.ID, now).
		Update("callback_at", now)
	if res.Error != nil {
		return f, identity{}, fmt.Errorf("use sign-in flow: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return f, identity{}, refuse("expired", "sign-in flow expired or already used")
	}
	if subtle.ConstantTimeCompare([]byte(c.Query("state")), []byte(f.State)) != 1 {
		return f, identity{}, refuse("state", "state does not match this browser's sign-in")
	}
	if e := c.Query("error"); e != "" {
		return f, identity{}, refuse("denied", "the provider answered "+truncate(e, 64))
	}
	code := c.Query("code")
	if code == "" || len(code) > 1024 {
		return f, identity{}, refuse("provider", "the provider sent no code")
	}
	id, err := p.identify(ctx, code, pkceVerifier(handle), f.Nonce)
	if err != nil {
		return f, identity{}, err
	}
	if f.Purpose == purposeLink {
		return f, id, s.linkIdentity(c, f, p, id)
	}
	uid, err := s.signInIdentity(c, p, id)
	if err != nil {
		return f, id, err
	}
	f.UserID = &uid
	return f, id, s.db.WithContext(ctx).Model(&oauthFlow{}).Where("id = ?", f.ID).Update("user_id", uid).Error
}

func truncate(v string, n int) string {
	v = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, v)
	if len(v) > n {
		return v[:n]
	}
	return v
}

type exchangeRequest struct {
	Code string `json:"code"`
}

// OAuthSession is what the SPA gets for a one-time code: the token pair of a login, and
// where in the SPA to go.
type OAuthSession struct {
	Tokens
	Redirect string `json:"redirect"`
}

var errBadCode = apperr.Unauthorized("this sign-in has expired or was already used; sign in again")

// oauthExchange trades the one-time code of a sign-in callback, with the browser's flow
// cookie, for a login's tokens.
func (s *Service) oauthExchange(c *gin.Context) {
	var req exchangeRequest
	if !s.admitSignIn(c, &req) {
		return
	}
	handle, _ := c.Cookie(flowCookie)
	out, u, provider, err := s.exchange(c.Request.Context(), s.clientIP(c), handle, req.Code)
	s.setFlowCookie(c, "", -1)
	e := audit.Entry{Action: "auth.oauth.login", Target: "user", TargetID: u.ID, Outcome: outcomeOf(err),
		Detail: map[string]any{"provider": provider}}
	if err == nil {
		e.Actor, e.ActorID = u.Username, u.ID
	} else {
		e.Detail["reason"] = reasonOf(err)
	}
	s.record(c, e)
	var locked *LockedError
	if errors.As(err, &locked) {
		tooMany(c, locked.RetryAfter, "too many failed sign-ins for this user")
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.sendTokens(c, &out.Tokens, &out)
}

func (s *Service) exchange(ctx context.Context, address, handle, code string) (OAuthSession, User, string, error) {
	if handle == "" || len(handle) > 128 || code == "" || len(code) > 128 {
		return OAuthSession{}, User{}, "", errBadCode
	}
	var f oauthFlow
	err := s.db.WithContext(ctx).Where("handle_hash = ? AND purpose = ?", HashToken(handle), purposeLogin).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return OAuthSession{}, User{}, "", errBadCode
	}
	if err != nil {
		return OAuthSession{}, User{}, "", fmt.Errorf("load sign-in flow: %w", err)
	}
	now := s.now()
	if f.CodeHash == nil || f.UserID == nil || f.CodeExpiresAt == nil || !now.Before(*f.CodeExpiresAt) ||
		subtle.ConstantTimeCompare([]byte(HashToken(code)), []byte(*f.CodeHash)) != 1 {
		return OAuthSession{}, User{}, f.Provider, errBadCode
	}
	res := s.db.WithContext(ctx).Model(&oauthFlow{}).Where("id = ? AND exchanged_at IS NULL", f.ID).Update("exchanged_at", now)
	if res.Error != nil {
		return OAuthSession{}, User{}, f.Provider, fmt.Errorf("use sign-in code: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return OAuthSession{}, User{}, f.Provider, errBadCode
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", *f.UserID).Take(&u).Error; err != nil {
		return OAuthSession{}, User{}, f.Provider, errBadCode
	}
	// Between callback and exchange the user may have been disabled or locked.
	if u.DisabledAt != nil {
		return OAuthSession{}, u, f.Provider, apperr.Unauthorized("this account is disabled")
	}
	if err := s.checkLocked(ctx, u.Username, address); err != nil {
		return OAuthSession{}, u, f.Provider, err
	}
	t, err := s.startSession(ctx, u)
	if err != nil {
		return OAuthSession{}, u, f.Provider, err
	}
	return OAuthSession{Tokens: t, Redirect: f.Redirect}, u, f.Provider, nil
}
