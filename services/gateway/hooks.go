package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/httpx"
)

// HookState is what fabu knows of a project's webhook: whether it installed one (and its
// id on the platform), where deliveries go, and what the latest deliveries looked like.
type HookState struct {
	Installed    bool          `json:"installed"`
	HookID       string        `json:"hook_id,omitempty"`
	URL          string        `json:"url,omitempty"`
	ConnectionID string        `json:"connection_id,omitempty"`
	RepoPath     string        `json:"repo_path,omitempty"`
	HasSecret    bool          `json:"has_secret"`
	LastDelivery *LastDelivery `json:"last_delivery"`
	Rejected24h  int64         `json:"rejected_24h"`
	// Platform is what the platform says of fabu's hook (GET only, when one is installed):
	// deliveries that never reached fabu show only there. PlatformError says why it could
	// not be asked; the rest of the state stands without it.
	Platform      *PlatformHook `json:"platform,omitempty"`
	PlatformError string        `json:"platform_error,omitempty"`
}

// PlatformHook is fabu's hook as its platform lists it.
type PlatformHook struct {
	Found         bool       `json:"found"` // false: someone removed it on the platform
	Active        bool       `json:"active"`
	URL           string     `json:"url,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"` // the latest delivery's answer, as the platform saw it
	LastResult    string     `json:"last_result,omitempty"`
	DisabledUntil *time.Time `json:"disabled_until,omitempty"`
}

// platformHookTimeout bounds the platform lookup of GET /projects/:id/hook.
const platformHookTimeout = 5 * time.Second

// LastDelivery is the latest webhook delivery recorded for a project.
type LastDelivery struct {
	ReceivedAt time.Time `json:"received_at"`
	Event      string    `json:"event"`
	Verdict    string    `json:"verdict"`
	Reason     string    `json:"reason"`
}

// hookURL is where a project's platform posts deliveries: the webhook service's route.
func (s *Service) hookURL(r *http.Request, platform, project string) string {
	return s.publicBase(r) + "/hooks/" + url.PathEscape(platform) + "/" + url.PathEscape(project)
}

// newHookSecret returns 32 random bytes, base64url-encoded.
func newHookSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate hook secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// installHook answers POST /projects/:id/hook: fabu's hook goes onto the project's
// repository with a fresh secret, sealed into the project. A hook fabu installed before is
// replaced (only that one: other hooks on the repository are never touched).
func (s *Service) installHook(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := s.findProjectForge(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	client, conn, err := s.projectClient(ctx, p)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	secret, err := newHookSecret()
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	sealed, err := s.cfg.Secrets.Seal([]byte(secret), SecretPlace(p.ID))
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("seal hook secret of %s: %w", p.Name, err))
		return
	}
	spec := forge.HookSpec{URL: s.hookURL(c.Request, conn.Platform, p.Name), Secret: secret}
	h, err := client.CreateHook(ctx, p.RepoPath, spec)
	if err != nil {
		httpx.Fail(c, s.log, platformError(conn.Name, err))
		return
	}
	if h.ID == "" {
		httpx.Fail(c, s.log, apperr.Unavailable("connection %s: the platform created a hook on %s without an id", conn.Name, p.RepoPath))
		return
	}
	old := p.HookID
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&projectForge{}).Where("id = ? AND hook_id = ?", p.ID, old).Updates(map[string]any{
			"hook_id": h.ID, "webhook_secret_sealed": sealed, "webhook_mode": "", "platform": conn.Platform,
			"updated_at": time.Now().UTC()})
		if res.Error != nil {
			return fmt.Errorf("record hook of %s: %w", p.Name, res.Error)
		}
		if res.RowsAffected == 0 {
			return apperr.Conflict("project %s changed while its hook was installed; try again", p.Name)
		}
		return nil
	})
	if err != nil {
		// Do not leave a hook behind whose secret fabu does not know.
		if derr := client.DeleteHook(ctx, p.RepoPath, h.ID); derr != nil && !apperr.Is(derr, apperr.CodeNotFound) {
			s.log.Error("remove unrecorded hook", "project", p.Name, "hook", h.ID, "err", derr)
		}
		httpx.Fail(c, s.log, err)
		return
	}
	if old != "" && old != h.ID {
		if derr := client.DeleteHook(ctx, p.RepoPath, old); derr != nil && !apperr.Is(derr, apperr.CodeNotFound) {
			s.log.Warn("remove replaced hook", "project", p.Name, "hook", old, "err", derr)
		}
	}
	p.HookID, p.WebhookSecretSealed = h.ID, sealed // and the platform's default mode, in which it was made
	s.writeHookState(c, p, spec.URL, nil)
}

// removeHook answers DELETE /projects/:id/hook: the hook whose id fabu stored is deleted
// from the platform (one already gone counts as deleted) and forgotten. No other hook is
// touched.
func (s *Service) removeHook(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := s.findProjectForge(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if p.HookID == "" {
		httpx.Fail(c, s.log, apperr.NotFound("project %s has no hook installed by fabu", p.Name))
		return
	}
	client, conn, err := s.projectClient(ctx, p)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := client.DeleteHook(ctx, p.RepoPath, p.HookID); err != nil && !apperr.Is(err, apperr.CodeNotFound) {
		httpx.Fail(c, s.log, platformError(conn.Name, err))
		return
	}
	res := s.db.WithContext(ctx).Model(&projectForge{}).Where("id = ? AND hook_id = ?", p.ID, p.HookID).
		Updates(map[string]any{"hook_id": "", "updated_at": time.Now().UTC()})
	if res.Error != nil {
		httpx.Fail(c, s.log, fmt.Errorf("forget hook of %s: %w", p.Name, res.Error))
		return
	}
	c.Status(http.StatusNoContent)
}

// hookState answers GET /projects/:id/hook.
func (s *Service) hookState(c *gin.Context) {
	p, err := s.findProjectForge(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	u := ""
	if p.ConnectionID != "" {
		u = s.hookURL(c.Request, p.Platform, p.Name)
	}
	s.writeHookState(c, p, u, func(st *HookState) { s.platformHook(c, p, st) })
}

// platformHook asks the platform for fabu's hook of p and puts what it says into st.
func (s *Service) platformHook(c *gin.Context, p projectForge, st *HookState) {
	if p.HookID == "" || p.ConnectionID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), platformHookTimeout)
	defer cancel()
	client, conn, err := s.projectClient(ctx, p)
	if err == nil {
		var hooks []forge.Hook
		if hooks, err = client.Hooks(ctx, p.RepoPath); err == nil {
			st.Platform = &PlatformHook{}
			for _, h := range hooks {
				if h.ID == p.HookID {
					st.Platform = &PlatformHook{Found: true, Active: h.Active, URL: h.URL, LastStatus: h.LastStatus,
						LastResult: h.LastResult, DisabledUntil: h.DisabledUntil}
				}
			}
			return
		}
		err = platformError(conn.Name, err)
	}
	_, st.PlatformError = apperr.Public(err)
	s.log.Warn("look up hook on its platform", "project", p.Name, "err", err)
}

// writeHookState answers with p's hook state; more, if not nil, adds to it.
func (s *Service) writeHookState(c *gin.Context, p projectForge, hookURL string, more func(*HookState)) {
	tx := s.db.WithContext(c.Request.Context())
	st := HookState{Installed: p.HookID != "", HookID: p.HookID, URL: hookURL, ConnectionID: p.ConnectionID,
		RepoPath: p.RepoPath, HasSecret: p.WebhookSecretSealed != ""}
	if more != nil {
		more(&st)
	}
	var last struct {
		ReceivedAt time.Time
		Event      string
		Verdict    string
		Reason     string
	}
	err := tx.Table("webhook_deliveries").Select("received_at, event, verdict, reason").Where("project_id = ?", p.ID).
		Order("received_at DESC").Order("id DESC").Limit(1).Take(&last).Error
	switch {
	case err == nil:
		st.LastDelivery = &LastDelivery{ReceivedAt: last.ReceivedAt.UTC(), Event: last.Event, Verdict: last.Verdict, Reason: last.Reason}
	case !errors.Is(err, gorm.ErrRecordNotFound):
		httpx.Fail(c, s.log, fmt.Errorf("last delivery of %s: %w", p.Name, err))
		return
	}
	// Refusals are counted per hour by the webhook service, which keeps only a sample of them
	// as delivery rows: the count covers the hours begun in the last 24.
	if err := tx.Table("webhook_rejections").Select("COALESCE(SUM(rejected), 0)").Where("project_id = ? AND period_start >= ?",
		p.ID, time.Now().UTC().Add(-24*time.Hour).Truncate(time.Hour)).Scan(&st.Rejected24h).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("count rejected deliveries of %s: %w", p.Name, err))
		return
	}
	c.JSON(http.StatusOK, st)
}
