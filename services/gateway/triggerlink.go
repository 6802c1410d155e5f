package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
)

// TriggerTokenBody is the answer to creating or rotating a project's trigger token: the token
// and the CI trigger URL carrying it. It is shown this once; fabu keeps only its SHA-256.
type TriggerTokenBody struct {
	Token string `json:"token"`
	URL   string `json:"url"`
}

// TriggerTokenState tells whether a project has a trigger URL, never the token.
type TriggerTokenState struct {
	Active bool `json:"active"`
}

// triggerLinkRoutes mounts a project's trigger token on the authenticated API group.
func (s *Service) triggerLinkRoutes(api gin.IRouter) {
	api.GET("/projects/:id/trigger-token", s.triggerTokenState)
	api.POST("/projects/:id/trigger-token", s.rotateTriggerToken)
	api.DELETE("/projects/:id/trigger-token", s.revokeTriggerToken)
}

// newTriggerToken returns a fresh token (32 random bytes, base64url) and its SHA-256 in hex.
func newTriggerToken() (token, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("trigger token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// setTriggerTokenHash stores a project's trigger token hash ("" for none) and who made it:
// the URL acts with its creator's rights, checked by the webhook service when it fires.
func (s *Service) setTriggerTokenHash(c *gin.Context, hash string) error {
	creator := ""
	if hash != "" {
		creator = currentCaller(c).ID
	}
	res := s.db.WithContext(c.Request.Context()).Table("projects").Where("id = ?", c.Param("id")).
		Updates(map[string]any{"trigger_token_hash": hash, "trigger_token_created_by": creator, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("set trigger token of project %s: %w", c.Param("id"), res.Error)
	}
	if res.RowsAffected == 0 {
		return apperr.NotFound("project %s not found", c.Param("id"))
	}
	return nil
}

// rotateTriggerToken handles POST /projects/:id/trigger-token: it creates the project's
// trigger token, or replaces it (the old URL stops working at once), and shows it this once.
// Only someone who may deploy the project to all its targets gets here (armProject).
func (s *Service) rotateTriggerToken(c *gin.Context) {
	token, hash, err := newTriggerToken()
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := s.setTriggerTokenHash(c, hash); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, TriggerTokenBody{Token: token, URL: s.publicBase(c.Request) + "/trigger/" + token})
}

// revokeTriggerToken handles DELETE /projects/:id/trigger-token: the URL stops working.
func (s *Service) revokeTriggerToken(c *gin.Context) {
	if err := s.setTriggerTokenHash(c, ""); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// triggerTokenState handles GET /projects/:id/trigger-token: whether a trigger URL exists.
func (s *Service) triggerTokenState(c *gin.Context) {
	var hashes []string
	err := s.db.WithContext(c.Request.Context()).Table("projects").Where("id = ?", c.Param("id")).
		Limit(1).Pluck("trigger_token_hash", &hashes).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("read trigger token of project %s: %w", c.Param("id"), err))
		return
	}
	if len(hashes) == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("project %s not found", c.Param("id")))
		return
	}
	c.JSON(http.StatusOK, TriggerTokenState{Active: hashes[0] != ""})
}

// publicBase is where platforms and CI reach fabu: Config.PublicURL when set, since behind
// some proxies neither Host nor X-Forwarded-Proto is the public address; otherwise the
// scheme and host the caller reached fabu at. The caller is authenticated and sees only
// their own answer, so trusting X-Forwarded-Proto here misleads no one else.
func (s *Service) publicBase(r *http.Request) string {
	if base := strings.TrimRight(s.cfg.PublicURL, "/"); base != "" {
		return base
	}
	return requestBase(r)
}

func requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
