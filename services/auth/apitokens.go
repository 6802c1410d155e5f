package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// apiToken is a row of auth_tokens: an API token for the CLI or CI.
type apiToken struct {
	ID         string `gorm:"primaryKey"`
	UserID     string
	Name       string
	Scopes     string // comma-separated
	TokenHash  string
	ExpiresAt  time.Time
	LastUsedAt *time.Time
	CreatedAt  time.Time
}

func (apiToken) TableName() string { return "auth_tokens" }

// APITokenView is an API token as the API lists it: never the token or its hash.
type APITokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func (t apiToken) view() APITokenView {
	return APITokenView{ID: t.ID, Name: t.Name, Scopes: authn.ParseScopes(t.Scopes), CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}

// NewAPIToken asks for an API token.
type NewAPIToken struct {
	Name          string   `json:"name"`
	Scopes        []string `json:"scopes"`
	ExpiresInDays int      `json:"expires_in_days"` // default 30
}

// CreatedAPIToken is a new API token; Token is shown this once.
type CreatedAPIToken struct {
	APITokenView
	Token string `json:"token"`
}

func (s *Service) createAPIToken(c *gin.Context) {
	var req NewAPIToken
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	p := principal(c)
	t, err := s.CreateAPIToken(c.Request.Context(), p, req)
	e := audit.Entry{Actor: p.Username, ActorID: p.UserID, Action: "auth.api_token.create", Target: "api_token",
		TargetID: t.ID, Outcome: outcomeOf(err),
		Detail: map[string]any{"name": req.Name, "scopes": req.Scopes, "expires_in_days": req.ExpiresInDays}}
	if err != nil {
		e.Detail["reason"] = reasonOf(err)
	}
	s.record(c, e)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, t)
}

// CreateAPIToken makes an API token for the caller p. Its scopes must be ones p holds: a
// token never has more power than the credential that made it, nor than its user's role.
func (s *Service) CreateAPIToken(ctx context.Context, p authn.Principal, req NewAPIToken) (CreatedAPIToken, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || len([]rune(name)) > 100 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return CreatedAPIToken{}, apperr.Invalid("name: 1 to 100 printable characters")
	}
	if len(req.Scopes) == 0 {
		return CreatedAPIToken{}, apperr.Invalid("scopes: at least one of %s", strings.Join(authn.Scopes, ", "))
	}
	var scopes []string
	for _, sc := range req.Scopes {
		if !slices.Contains(authn.Scopes, sc) {
			return CreatedAPIToken{}, apperr.Invalid("scopes: unknown scope %q (known: %s)", sc, strings.Join(authn.Scopes, ", "))
		}
		if !p.Allows(sc) {
			return CreatedAPIToken{}, apperr.Forbidden("you cannot give a token scope %q: you do not hold it", sc)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	days := req.ExpiresInDays
	if days == 0 {
		days = 30
	}
	if days < 1 || days > s.cfg.MaxAPITokenDays {
		return CreatedAPIToken{}, apperr.Invalid("expires_in_days: 1 to %d", s.cfg.MaxAPITokenDays)
	}
	raw := authn.APITokenPrefix + randomString(32)
	now := s.now()
	t := apiToken{ID: ids.New(), UserID: p.UserID, Name: name, Scopes: strings.Join(scopes, ","), TokenHash: HashToken(raw),
		ExpiresAt: now.Add(time.Duration(days) * 24 * time.Hour), CreatedAt: now}
	if err := s.db.WithContext(ctx).Create(&t).Error; err != nil {
		return CreatedAPIToken{}, fmt.Errorf("store API token: %w", err)
	}
	return CreatedAPIToken{APITokenView: t.view(), Token: raw}, nil
}

// listAPITokens lists the caller's unexpired API tokens, newest first.
func (s *Service) listAPITokens(c *gin.Context) {
	var rows []apiToken
	err := s.db.WithContext(c.Request.Context()).Where("user_id = ? AND expires_at > ?", principal(c).UserID, s.now()).
		Order("created_at DESC, id DESC").Find(&rows).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list API tokens: %w", err))
		return
	}
	out := make([]APITokenView, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.view())
	}
	c.JSON(http.StatusOK, out)
}

// revokeAPIToken deletes one of the caller's API tokens; an administrator may revoke
// anyone's.
func (s *Service) revokeAPIToken(c *gin.Context) {
	p := principal(c)
	q := s.db.WithContext(c.Request.Context()).Where("id = ?", c.Param("id"))
	if !p.Allows(authn.ScopeAdmin) {
		q = q.Where("user_id = ?", p.UserID)
	}
	res := q.Delete(&apiToken{})
	e := audit.Entry{Actor: p.Username, ActorID: p.UserID, Action: "auth.api_token.revoke", Target: "api_token",
		TargetID: c.Param("id"), Outcome: audit.OK}
	switch {
	case res.Error != nil:
		e.Outcome = audit.Failed
	case res.RowsAffected == 0:
		e.Outcome, e.Detail = audit.Refused, map[string]any{"reason": "no such API token of the caller"}
	}
	s.record(c, e)
	if res.Error != nil {
		httpx.Fail(c, s.log, fmt.Errorf("revoke API token: %w", res.Error))
		return
	}
	if res.RowsAffected == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("no API token %q", c.Param("id")))
		return
	}
	noContent(c)
}
