package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

type session struct {
	ID           string `gorm:"primaryKey"`
	UserID       string
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    *time.Time
	RevokeReason string
}

func (session) TableName() string { return "auth_sessions" }

type refreshToken struct {
	ID        string `gorm:"primaryKey"`
	SessionID string
	TokenHash string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (refreshToken) TableName() string { return "auth_refresh_tokens" }

// Tokens is what a login or a refresh issues. Token repeats AccessToken for clients of the
// API before refresh tokens existed. A browser gets RefreshToken only as a cookie (cookie.go),
// so its answer leaves the field out.
type Tokens struct {
	Token            string   `json:"token"`
	AccessToken      string   `json:"access_token"`
	TokenType        string   `json:"token_type"`
	ExpiresIn        int64    `json:"expires_in"` // seconds
	RefreshToken     string   `json:"refresh_token,omitempty"`
	RefreshExpiresIn int64    `json:"refresh_expires_in"`
	User             UserView `json:"user"`
}

var errBadLogin = apperr.Unauthorized("wrong username or password")

// admitSignIn applies the per-address limit of sign-in attempts and binds the request body
// into req; false when it has already answered the request.
func (s *Service) admitSignIn(c *gin.Context, req any) bool {
	if wait, ok := s.limiter.take(s.clientIP(c), s.cfg.Now()); !ok {
		tooMany(c, wait, "too many sign-in attempts from your address")
		return false
	}
	if err := httpx.Bind(c, req); err != nil {
		httpx.Fail(c, s.log, err)
		return false
	}
	return true
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Service) login(c *gin.Context) {
	var req loginRequest
	if !s.admitSignIn(c, &req) {
		return
	}
	t, err := s.LoginFrom(c.Request.Context(), s.clientIP(c), req.Username, req.Password)
	s.recordLogin(c, req.Username, t, err)
	var locked *LockedError
	if errors.As(err, &locked) {
		tooMany(c, locked.RetryAfter, "too many failed sign-ins for this user")
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.sendTokens(c, &t, &t)
}

// recordLogin audits a sign-in: its success, a failure (by the user name as typed, which
// need not exist; never the password) and, when this failure locked the name, the lockout.
func (s *Service) recordLogin(c *gin.Context, username string, t Tokens, err error) {
	if err == nil {
		s.record(c, audit.Entry{Actor: t.User.Username, ActorID: t.User.ID, Action: "auth.login", Target: "user",
			TargetID: t.User.ID, Outcome: audit.OK})
		return
	}
	s.record(c, audit.Entry{Action: "auth.login", Target: "user", TargetID: username, Outcome: outcomeOf(err),
		Detail: map[string]any{"reason": reasonOf(err)}})
	var locked *LockedError
	if errors.As(err, &locked) || outcomeOf(err) != audit.Refused || username == "" {
		return
	}
	// Login checked the throttle before this attempt, so a wait now is one this failure set.
	if lerr := s.checkLocked(c.Request.Context(), username, s.clientIP(c)); errors.As(lerr, &locked) {
		s.record(c, audit.Entry{Action: "auth.lockout", Target: "user", TargetID: username, Outcome: audit.Refused,
			Detail: map[string]any{"failures": s.cfg.LockoutFailures, "window": s.cfg.LockoutWindow.String(),
				"locked_for": locked.RetryAfter.Round(1e9).String()}})
	}
}

// Login is LoginFrom a client without an address (a caller inside the process).
func (s *Service) Login(ctx context.Context, username, password string) (Tokens, error) {
	return s.LoginFrom(ctx, "", username, password)
}

// LoginFrom checks a user's password, given by the client at address, and starts a session:
// an access token and a refresh token. Unknown users and wrong passwords get the same error
// after the same work (one argon2id computation). A client that must wait after too many
// failed sign-ins (limit.go) gets a *LockedError without the password being checked, even
// a right one.
func (s *Service) LoginFrom(ctx context.Context, address, username, password string) (Tokens, error) {
	if username == "" || password == "" || len(password) > 1024 || len(username) > 256 {
		return Tokens{}, errBadLogin
	}
	if err := s.checkLocked(ctx, username, address); err != nil {
		return Tokens{}, err
	}
	u, err := s.verifyPassword(ctx, address, username, password)
	if err != nil {
		return Tokens{}, err
	}
	if err := s.clearFailures(ctx, username, address); err != nil {
		return Tokens{}, err
	}
	return s.startSession(ctx, u)
}

// verifyPassword returns the user if password is theirs. It runs argon2id exactly once
// whether or not the user exists, and counts a failure against the user name and the
// client address.
func (s *Service) verifyPassword(ctx context.Context, address, username, password string) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("username = ?", username).Take(&u).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return User{}, fmt.Errorf("load user %q: %w", username, err)
	}
	// A user without a password (created through a sign-in provider) is checked against the
	// dummy hash too, so the time taken does not tell such users apart.
	usable := err == nil && hasPassword(u.PasswordHash)
	hash := u.PasswordHash
	if !usable {
		hash = s.dummy
	}
	if s.checkPassword(hash, password) != nil || !usable {
		if ferr := s.recordFailure(ctx, username, address); ferr != nil {
			return User{}, ferr
		}
		return User{}, errBadLogin
	}
	// A disabled user gets the same answer as a wrong password, after the same work.
	if u.DisabledAt != nil {
		return User{}, errBadLogin
	}
	return u, nil
}

func (s *Service) startSession(ctx context.Context, u User) (Tokens, error) {
	now := s.now()
	sess := session{ID: ids.New(), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	raw := randomString(32)
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&sess).Error; err != nil {
			return err
		}
		return tx.Create(&refreshToken{ID: ids.New(), SessionID: sess.ID, TokenHash: HashToken(raw),
			ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now}).Error
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("start session of %s: %w", u.Username, err)
	}
	return s.issue(ctx, u, sess.ID, raw)
}

// issue signs an access token for u in session sid.
func (s *Service) issue(ctx context.Context, u User, sid, refresh string) (Tokens, error) {
	kid, key, err := s.signer.current(ctx)
	if err != nil {
		return Tokens{}, err
	}
	now := s.cfg.Now()
	access, err := authn.Sign(key, kid, authn.Claims{
		Issuer: authn.Issuer, Audience: authn.Audiences{authn.Audience}, Subject: u.ID, Name: u.Username, Role: u.Role,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(s.cfg.AccessTTL).Unix(), ID: ids.New(), SessionID: sid,
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("sign access token: %w", err)
	}
	return Tokens{Token: access, AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int64(s.cfg.RefreshTTL / time.Second),
		User: UserView{ID: u.ID, Username: u.Username, Role: u.Role}}, nil
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh trades a refresh token for new tokens. The token comes in the JSON body (the CLI,
// API clients), and the new one goes back there; or, from a browser, in the refresh cookie
// with an empty body, and the new one goes back into the cookie only.
func (s *Service) refresh(c *gin.Context) {
	var req refreshRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	fromCookie := req.RefreshToken == ""
	if fromCookie {
		req.RefreshToken, _ = c.Cookie(refreshCookie)
	}
	t, err := s.Refresh(c.Request.Context(), req.RefreshToken)
	if err != nil {
		if fromCookie && apperr.Is(err, apperr.CodeUnauthorized) {
			s.setRefreshCookie(c, "") // it will not work again
		}
		httpx.Fail(c, s.log, err)
		return
	}
	if fromCookie {
		s.setRefreshCookie(c, t.RefreshToken)
		t.RefreshToken = ""
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, t)
}

var errBadRefresh = apperr.Unauthorized("invalid or expired refresh token; sign in again")

// Refresh exchanges a refresh token for a new access token and a new refresh token. Each
// refresh token works once: presenting one that was already used means it was copied, so
// the whole session (every refresh and access token of that login) is revoked.
func (s *Service) Refresh(ctx context.Context, raw string) (Tokens, error) {
	if raw == "" || len(raw) > 512 {
		return Tokens{}, errBadRefresh
	}
	now := s.now()
	var u User
	var sid string
	next := randomString(32)
	reused := false
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var rt refreshToken
		if err := tx.Where("token_hash = ?", HashToken(raw)).Take(&rt).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errBadRefresh
			}
			return err
		}
		var sess session
		if err := tx.Where("id = ?", rt.SessionID).Take(&sess).Error; err != nil {
			return fmt.Errorf("load session: %w", err)
		}
		if sess.RevokedAt != nil {
			return errBadRefresh
		}
		if rt.UsedAt != nil {
			reused = true
			return revokeSessions(tx, now, "refresh token reused", "id = ?", sess.ID)
		}
		if !now.Before(rt.ExpiresAt) {
			return errBadRefresh
		}
		// The used_at guard settles two simultaneous uses of one token: one wins, the other
		// is a reuse.
		res := tx.Model(&refreshToken{}).Where("id = ? AND used_at IS NULL", rt.ID).Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			reused = true
			return revokeSessions(tx, now, "refresh token reused", "id = ?", sess.ID)
		}
		if err := tx.Where("id = ?", sess.UserID).Take(&u).Error; err != nil || u.DisabledAt != nil {
			return errBadRefresh // the user was deleted or disabled
		}
		sid = sess.ID
		if err := tx.Model(&session{}).Where("id = ?", sid).Update("expires_at", now.Add(s.cfg.RefreshTTL)).Error; err != nil {
			return err
		}
		return tx.Create(&refreshToken{ID: ids.New(), SessionID: sid, TokenHash: HashToken(next),
			ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now}).Error
	})
	if reused {
		s.log.Warn("refresh token reused; session revoked")
		return Tokens{}, apperr.Unauthorized("this refresh token was already used; the session is revoked, sign in again")
	}
	if err != nil {
		if apperr.Is(err, apperr.CodeUnauthorized) {
			return Tokens{}, err
		}
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	return s.issue(ctx, u, sid, next)
}

// revokeSessions revokes the sessions matching where, and with them their refresh tokens
// and access tokens (the verifier checks the session of each access token).
func revokeSessions(tx *gorm.DB, now time.Time, reason, where string, args ...any) error {
	return tx.Model(&session{}).Where("revoked_at IS NULL").Where(where, args...).
		Updates(map[string]any{"revoked_at": now, "revoke_reason": reason}).Error
}

type logoutRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// logout ends a session: the access token in the Authorization header is revoked until it
// expires, and so is its session (all its refresh tokens). A refresh token in the body ends
// its session too. An API token as the bearer is revoked. The browser's refresh cookie is
// deleted whatever the outcome.
func (s *Service) logout(c *gin.Context) {
	s.setRefreshCookie(c, "")
	var req logoutRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	ctx := c.Request.Context()
	done := false
	if raw, ok := bearer(c); ok {
		p, err := s.authn.Authenticate(ctx, raw)
		if err != nil && !apperr.Is(err, apperr.CodeUnauthorized) {
			httpx.Fail(c, s.log, err)
			return
		}
		if err == nil {
			if err := s.revokePrincipal(ctx, p); err != nil {
				httpx.Fail(c, s.log, err)
				return
			}
			done = true
		}
	}
	if req.RefreshToken != "" {
		var rt refreshToken
		err := s.db.WithContext(ctx).Where("token_hash = ?", HashToken(req.RefreshToken)).Take(&rt).Error
		if err == nil {
			err = revokeSessions(s.db.WithContext(ctx), s.now(), "logout", "id = ?", rt.SessionID)
			done = err == nil
		}
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			httpx.Fail(c, s.log, fmt.Errorf("logout: %w", err))
			return
		}
	}
	if !done {
		httpx.Fail(c, s.log, apperr.Unauthorized("nothing to sign out: no valid token"))
		return
	}
	noContent(c)
}

func (s *Service) revokePrincipal(ctx context.Context, p authn.Principal) error {
	db := s.db.WithContext(ctx)
	if p.Kind == authn.KindAPIToken {
		return db.Exec("DELETE FROM auth_tokens WHERE id = ?", p.TokenID).Error
	}
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec("INSERT INTO auth_revoked_tokens (jti, expires_at, created_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
			p.TokenID, p.ExpiresAt.UTC(), s.now()).Error
		if err != nil {
			return err
		}
		return revokeSessions(tx, s.now(), "logout", "id = ?", p.SessionID)
	})
}

type passwordRequest struct {
	Old string `json:"old"`
	New string `json:"new"`
}

// changePassword sets a new password after checking the old one, and signs out every other
// session of the user. API tokens stay valid: they are revoked one by one.
func (s *Service) changePassword(c *gin.Context) {
	var req passwordRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	p := principal(c)
	err := s.ChangePassword(c.Request.Context(), s.clientIP(c), p.UserID, p.SessionID, req.Old, req.New)
	e := audit.Entry{Actor: p.Username, ActorID: p.UserID, Action: "auth.password_change", Target: "user",
		TargetID: p.UserID, Outcome: outcomeOf(err)}
	if err != nil {
		e.Detail = map[string]any{"reason": reasonOf(err)}
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
	noContent(c)
}

// ChangePassword replaces the password of user userID, keeping session keep and revoking
// the user's other sessions. Wrong old passwords, from the client at address, count
// towards sign-in throttling like failed sign-ins.
func (s *Service) ChangePassword(ctx context.Context, address, userID, keep, old, newPassword string) error {
	if keep == "" {
		return apperr.Forbidden("sign in with your password to change it")
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", userID).Take(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return apperr.Unauthorized("your user no longer exists")
		}
		return fmt.Errorf("load user: %w", err)
	}
	if err := CheckStrength(newPassword); err != nil {
		return err
	}
	if newPassword == old {
		return apperr.Invalid("the new password must differ from the old one")
	}
	if err := s.checkLocked(ctx, u.Username, address); err != nil {
		return err
	}
	if !hasPassword(u.PasswordHash) {
		return apperr.Invalid("you sign in through GitLab or GitHub and have no password to change")
	}
	if old == "" || len(old) > 1024 {
		return apperr.Invalid("the old password is wrong")
	}
	if _, err := s.verifyPassword(ctx, address, u.Username, old); err != nil {
		if apperr.Is(err, apperr.CodeUnauthorized) {
			return apperr.Invalid("the old password is wrong")
		}
		return err
	}
	hash, err := HashPassword(newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	return s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Update("password_hash", hash).Error; err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		return revokeSessions(tx, now, "password changed", "user_id = ? AND id <> ?", u.ID, keep)
	})
}

func bearer(c *gin.Context) (string, bool) {
	raw, ok := cutBearer(c.GetHeader("Authorization"))
	return raw, ok && raw != ""
}

func cutBearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):], true
	}
	return "", false
}
