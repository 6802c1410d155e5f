package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
)

// userIdentity is a row of user_identities: an account at a sign-in provider linked to a
// fabu user.
type userIdentity struct {
	Provider    string `gorm:"primaryKey"`
	Subject     string `gorm:"primaryKey"`
	UserID      string
	Email       string
	Login       string
	LinkedAt    time.Time
	LastLoginAt *time.Time
}

func (userIdentity) TableName() string { return "user_identities" }

// IdentityView is a linked identity as the Account page shows it.
type IdentityView struct {
	Provider    string     `json:"provider"`
	Login       string     `json:"login"`
	Email       string     `json:"email"`
	LinkedAt    time.Time  `json:"linked_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// noPassword is the password hash of users created through a sign-in provider: no password
// matches it (verifyPassword checks the dummy hash instead, so they take as long as others).
const noPassword = "!no password: signs in through a provider"

func hasPassword(hash string) bool { return strings.HasPrefix(hash, "$argon2id$") }

// signInIdentity returns the user that identity id signs in as: the linked one, or a new
// one when the provider auto-provisions. Known identities get their email and login updated.
func (s *Service) signInIdentity(c *gin.Context, p provider, id identity) (string, error) {
	ctx := c.Request.Context()
	cfg := p.config()
	var link userIdentity
	err := s.db.WithContext(ctx).Where("provider = ? AND subject = ?", cfg.Name, id.Subject).Take(&link).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return s.provision(c, cfg, id)
	}
	if err != nil {
		return "", fmt.Errorf("load identity: %w", err)
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", link.UserID).Take(&u).Error; err != nil {
		return "", fmt.Errorf("load user of identity: %w", err)
	}
	if u.DisabledAt != nil {
		return "", refuse("disabled", "the user "+u.Username+" is disabled")
	}
	var locked *LockedError
	if err := s.checkLocked(ctx, u.Username, s.clientIP(c)); errors.As(err, &locked) {
		return "", refuse("locked", "the user "+u.Username+" is locked after too many failed sign-ins")
	} else if err != nil {
		return "", err
	}
	now := s.now()
	err = s.db.WithContext(ctx).Model(&userIdentity{}).Where("provider = ? AND subject = ?", cfg.Name, id.Subject).
		Updates(map[string]any{"email": id.Email, "login": truncate(id.Login, 255), "last_login_at": now}).Error
	if err != nil {
		return "", fmt.Errorf("update identity: %w", err)
	}
	return u.ID, nil
}

// provision creates a user for an identity no user has linked, when the provider allows it.
// It never looks for an existing user with the same email or name: that would hand an
// account to whoever controls that email at the provider.
func (s *Service) provision(c *gin.Context, cfg OAuthProvider, id identity) (string, error) {
	if !cfg.AutoCreate {
		return "", refuse("unknown_identity", "no fabu user has linked this "+cfg.Name+" account")
	}
	if len(cfg.AllowedDomains) > 0 {
		at := strings.LastIndexByte(id.Email, '@')
		if id.Email == "" || at < 0 || !slices.Contains(cfg.AllowedDomains, id.Email[at+1:]) {
			return "", refuse("not_allowed", "the account's verified email is not in an allowed domain")
		}
	}
	if len(cfg.AllowedGroups) > 0 && !inAllowedGroup(cfg, id.Groups) {
		return "", refuse("not_allowed", "the account is in none of the allowed groups")
	}
	ctx := c.Request.Context()
	name, err := s.freeUsername(ctx, cfg.Name, id)
	if err != nil {
		return "", err
	}
	now := s.now()
	u := User{ID: ids.New(), Username: name, PasswordHash: noPassword, Role: RoleUser, CreatedAt: now}
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&u).Error; err != nil {
			return err
		}
		return tx.Create(&userIdentity{Provider: cfg.Name, Subject: id.Subject, UserID: u.ID, Email: id.Email,
			Login: truncate(id.Login, 255), LinkedAt: now, LastLoginAt: &now}).Error
	})
	if store.IsUniqueViolation(err) { // the name was taken, or the identity linked, meanwhile
		return "", refuse("conflict", "another sign-in created this user at the same time; sign in again")
	}
	if err != nil {
		return "", fmt.Errorf("create user for identity: %w", err)
	}
	s.record(c, audit.Entry{Actor: u.Username, ActorID: u.ID, Action: "auth.oauth.provision", Target: "user", TargetID: u.ID,
		Outcome: audit.OK, Detail: map[string]any{"provider": cfg.Name, "subject": id.Subject, "login": id.Login,
			"email": id.Email, "username": u.Username, "role": u.Role}})
	return u.ID, nil
}

func inAllowedGroup(cfg OAuthProvider, groups []string) bool {
	for _, g := range groups {
		g = strings.Trim(g, "/")
		if cfg.Name == ProviderGitHub {
			g = strings.ToLower(g)
		}
		for _, a := range cfg.AllowedGroups {
			if g == a || (cfg.Name == ProviderGitLab && strings.HasPrefix(g, a+"/")) {
				return true
			}
		}
	}
	return false
}

var (
	badUsernameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	usernamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// freeUsername picks a user name for a new user from the provider login: the login itself
// when free and valid, else with the provider's name, else with a number.
func (s *Service) freeUsername(ctx context.Context, providerName string, id identity) (string, error) {
	base := strings.TrimLeft(badUsernameChars.ReplaceAllString(id.Login, "-"), "._-")
	if len(base) > 48 {
		base = base[:48]
	}
	if base == "" {
		base = providerName + "-" + truncate(badUsernameChars.ReplaceAllString(id.Subject, ""), 40)
	}
	candidates := []string{base, base + "-" + providerName}
	for i := 2; i <= 20; i++ {
		candidates = append(candidates, fmt.Sprintf("%s-%s-%d", base, providerName, i))
	}
	for _, name := range candidates {
		if !usernamePattern.MatchString(name) {
			continue
		}
		var n int64
		if err := s.db.WithContext(ctx).Model(&User{}).Where("username = ?", name).Count(&n).Error; err != nil {
			return "", fmt.Errorf("check user name: %w", err)
		}
		if n == 0 {
			return name, nil
		}
	}
	return "", refuse("conflict", "no free user name for "+id.Login)
}

// linkIdentity links id to the user who started the link flow f, if that login is still
// valid and id is nobody's yet.
func (s *Service) linkIdentity(c *gin.Context, f oauthFlow, p provider, id identity) error {
	ctx := c.Request.Context()
	name := p.config().Name
	if f.UserID == nil {
		return refuse("expired", "the link request has no user")
	}
	var u User
	if err := s.db.WithContext(ctx).Where("id = ?", *f.UserID).Take(&u).Error; err != nil {
		return refuse("expired", "the user who asked to link is gone")
	}
	if u.DisabledAt != nil {
		return refuse("disabled", "the user "+u.Username+" is disabled")
	}
	var n int64
	err := s.db.WithContext(ctx).Model(&session{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?",
		f.SessionID, u.ID, s.now()).Count(&n).Error
	if err != nil {
		return fmt.Errorf("check session: %w", err)
	}
	if n == 0 {
		return refuse("expired", "the login that asked to link has ended")
	}
	var existing userIdentity
	err = s.db.WithContext(ctx).Where("provider = ? AND (subject = ? OR user_id = ?)", name, id.Subject, u.ID).Take(&existing).Error
	switch {
	case err == nil && existing.Subject == id.Subject && existing.UserID == u.ID:
		return refuse("already_linked", "this account is already linked to you")
	case err == nil && existing.Subject == id.Subject:
		return refuse("taken", "this "+name+" account is linked to another fabu user")
	case err == nil:
		return refuse("already_linked", "you have linked another "+name+" account; unlink it first")
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("load identity: %w", err)
	}
	now := s.now()
	err = s.db.WithContext(ctx).Create(&userIdentity{Provider: name, Subject: id.Subject, UserID: u.ID, Email: id.Email,
		Login: truncate(id.Login, 255), LinkedAt: now}).Error
	if store.IsUniqueViolation(err) {
		return refuse("taken", "this "+name+" account was linked meanwhile")
	}
	if err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	s.record(c, audit.Entry{Actor: u.Username, ActorID: u.ID, Action: "auth.oauth.link", Target: "identity",
		TargetID: identityTarget(name, id.Subject), Outcome: audit.OK,
		Detail: map[string]any{"provider": name, "login": id.Login, "email": id.Email}})
	return nil
}

// listIdentities answers the caller's linked identities.
func (s *Service) listIdentities(c *gin.Context) {
	var rows []userIdentity
	err := s.db.WithContext(c.Request.Context()).Where("user_id = ?", principal(c).UserID).Order("provider").Find(&rows).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list identities: %w", err))
		return
	}
	out := make([]IdentityView, 0, len(rows))
	for _, r := range rows {
		out = append(out, IdentityView{Provider: r.Provider, Login: r.Login, Email: r.Email, LinkedAt: r.LinkedAt, LastLoginAt: r.LastLoginAt})
	}
	c.JSON(http.StatusOK, out)
}

// unlinkIdentity removes the caller's identity at a provider. The last way a user without
// a password signs in cannot be removed.
func (s *Service) unlinkIdentity(c *gin.Context) {
	p := principal(c)
	name := c.Param("provider")
	var target string
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var link userIdentity
		if err := tx.Where("user_id = ? AND provider = ?", p.UserID, name).Take(&link).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.NotFound("you have no linked %q account", name)
			}
			return err
		}
		target = identityTarget(name, link.Subject)
		var u User
		if err := tx.Where("id = ?", p.UserID).Take(&u).Error; err != nil {
			return err
		}
		var others int64
		if err := tx.Model(&userIdentity{}).Where("user_id = ? AND provider <> ?", p.UserID, name).Count(&others).Error; err != nil {
			return err
		}
		if !hasPassword(u.PasswordHash) && others == 0 {
			return apperr.Conflict("this is the only way you sign in (you have no password); link another account first")
		}
		return tx.Where("provider = ? AND subject = ?", name, link.Subject).Delete(&userIdentity{}).Error
	})
	e := audit.Entry{Actor: p.Username, ActorID: p.UserID, Action: "auth.oauth.unlink", Target: "identity", TargetID: target,
		Outcome: outcomeOf(err), Detail: map[string]any{"provider": truncate(name, 32)}}
	if err != nil {
		e.Detail["reason"] = reasonOf(err)
	}
	s.record(c, e)
	if err != nil {
		if apperr.CodeOf(err) == apperr.CodeInternal {
			err = fmt.Errorf("unlink identity: %w", err)
		}
		httpx.Fail(c, s.log, err)
		return
	}
	noContent(c)
}
