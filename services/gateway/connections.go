package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/clients"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// ForgeConfig configures what the gateway does with forge connections: where platforms
// send webhooks, how often connections are synced and how their API clients are made.
type ForgeConfig struct {
	// PublicURL is the base URL the platforms reach fabu at; fabu's hooks post to
	// <PublicURL>/hooks/<platform>/<project>. Empty: the scheme and host of the request
	// that installs the hook.
	PublicURL string
	// SyncInterval is how often every connection is synced; 0 means DefaultSyncInterval
	// and a negative value turns the periodic sync off.
	SyncInterval time.Duration
	// NewForgeClient makes a connection's API client; nil means clients.New.
	NewForgeClient func(forge.Connection) (forge.Client, error)
}

// DefaultSyncInterval is how often connections are synced unless configured otherwise.
const DefaultSyncInterval = 10 * time.Minute

// Sync states of a connection.
const (
	SyncNever  = "never"
	SyncOK     = "ok"
	SyncFailed = "failed"
)

// ForgeConnection is a forge connection as stored in forge_connections. The token is
// sealed with TokenPlace(ID).
type ForgeConnection struct {
	ID          string `gorm:"primaryKey"`
	Name        string
	Platform    string
	BaseURL     string
	TokenSealed string
	SyncState   string
	SyncError   string
	SyncedAt    *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// TableName tells GORM the table.
func (ForgeConnection) TableName() string { return "forge_connections" }

// ConnectionBody is a connection as the API reads and shows it. Token is write-only: it is
// stored sealed and never shown; HasToken tells whether one is set.
type ConnectionBody struct {
	ID        string     `json:"id,omitempty"`
	Name      string     `json:"name"`
	Platform  string     `json:"platform"`
	BaseURL   string     `json:"base_url"`
	Token     string     `json:"token,omitempty"`
	HasToken  bool       `json:"has_token"`
	SyncState string     `json:"sync_state,omitempty"`
	SyncError string     `json:"sync_error,omitempty"`
	SyncedAt  *time.Time `json:"synced_at,omitempty"`
}

// TokenPlace is where a connection's access token is sealed for.
func TokenPlace(connectionID string) string { return "forge_connections/" + connectionID + "/token" }

// defaultBaseURLs are the web roots of the platforms' public services, used when a
// connection names none.
var defaultBaseURLs = map[forge.Platform]string{
	forge.GitLab: "https://gitlab.com",
	forge.GitHub: "https://github.com",
	forge.Gitee:  "https://gitee.com",
}

// forgeRoutes mounts connections, their repositories, project sources, live refs and hook
// management on api.
func (s *Service) forgeRoutes(api gin.IRouter) {
	api.GET("/connections", s.listConnections)
	api.POST("/connections", s.createConnection)
	api.GET("/connections/:id", s.getConnection)
	api.PUT("/connections/:id", s.updateConnection)
	api.DELETE("/connections/:id", s.deleteConnection)
	api.POST("/connections/:id/sync", s.syncNow)
	api.GET("/connections/:id/repos", s.listRepos)
	api.DELETE("/connections/:id/repos/:repo_id", s.removeRepo)
	api.POST("/connections/:id/repos/:repo_id/restore", s.restoreRepo)
	api.GET("/projects/:id/source", s.getSource)
	api.PUT("/projects/:id/source", s.setSource)
	api.DELETE("/projects/:id/source", s.clearSource)
	api.GET("/projects/:id/refs", s.listRefs)
	api.GET("/projects/:id/hook", s.hookState)
	api.POST("/projects/:id/hook", s.installHook)
	api.DELETE("/projects/:id/hook", s.removeHook)
}

// validBaseURL checks a connection's web root: http(s), a host, no credentials, query or
// fragment. It returns it without a trailing slash.
func validBaseURL(name, raw string) (string, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", apperr.Invalid("connection %s: base_url must be an http(s) URL", name)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#") {
		return "", apperr.Invalid("connection %s: base_url must not carry credentials, a query or a fragment", name)
	}
	if strings.ContainsAny(raw, " \t\r\n\x00") || len(raw) > 2048 {
		return "", apperr.Invalid("connection %s: base_url has unexpected characters", name)
	}
	return raw, nil
}

// toModel validates b into a connection (without its token).
func (b ConnectionBody) toModel() (ForgeConnection, error) {
	if err := validName("connection", b.Name); err != nil {
		return ForgeConnection{}, err
	}
	p := forge.Platform(b.Platform)
	if !clients.Supported(p) {
		return ForgeConnection{}, apperr.Invalid("connection %s: platform %q is not gitlab, github or gitee", b.Name, b.Platform)
	}
	if b.BaseURL == "" {
		b.BaseURL = defaultBaseURLs[p]
	}
	base, err := validBaseURL(b.Name, b.BaseURL)
	if err != nil {
		return ForgeConnection{}, err
	}
	if len(b.Token) > 4096 || strings.ContainsAny(b.Token, " \t\r\n\x00") {
		return ForgeConnection{}, apperr.Invalid("connection %s: token must be one word of at most 4096 bytes", b.Name)
	}
	return ForgeConnection{Name: b.Name, Platform: b.Platform, BaseURL: base}, nil
}

func connectionBody(m ForgeConnection) ConnectionBody {
	return ConnectionBody{ID: m.ID, Name: m.Name, Platform: m.Platform, BaseURL: m.BaseURL, HasToken: m.TokenSealed != "",
		SyncState: m.SyncState, SyncError: m.SyncError, SyncedAt: m.SyncedAt}
}

func (s *Service) findConnection(ctx context.Context, id string) (ForgeConnection, error) {
	var m ForgeConnection
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, apperr.NotFound("connection %s not found", id)
	}
	if err != nil {
		return m, fmt.Errorf("load connection %s: %w", id, err)
	}
	return m, nil
}

// forgeClient opens m's token and returns its platform's API client.
func (s *Service) forgeClient(m ForgeConnection) (forge.Client, error) {
	var token string
	if m.TokenSealed != "" {
		plain, err := s.cfg.Secrets.Open(m.TokenSealed, TokenPlace(m.ID))
		if err != nil {
			return nil, apperr.Wrap(err, apperr.CodeUnavailable, "connection %s: its token cannot be opened (was the master key changed?)", m.Name)
		}
		token = string(plain)
	}
	conn := forge.Connection{Platform: forge.Platform(m.Platform), BaseURL: m.BaseURL, Token: token}
	newClient := s.cfg.NewForgeClient
	if newClient == nil {
		newClient = func(c forge.Connection) (forge.Client, error) { return clients.New(c) }
	}
	c, err := newClient(conn)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", m.Name, err)
	}
	return c, nil
}

// platformError turns a forge error into one the API may return: the platform refusing
// fabu's token is not the caller's session failing, so it must not become a 401 or 403.
func platformError(conn string, err error) error {
	switch apperr.CodeOf(err) {
	case apperr.CodeUnauthorized, apperr.CodeForbidden:
		_, msg := apperr.Public(err)
		return apperr.Wrap(err, apperr.CodeUnavailable, "connection %s: the platform refused the token: %s", conn, msg)
	}
	return err
}

func (s *Service) listConnections(c *gin.Context) {
	var ms []ForgeConnection
	if err := s.db.WithContext(c.Request.Context()).Order("name").Find(&ms).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list connections: %w", err))
		return
	}
	out := make([]ConnectionBody, len(ms))
	for i, m := range ms {
		out[i] = connectionBody(m)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) getConnection(c *gin.Context) {
	m, err := s.findConnection(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, connectionBody(m))
}

func (s *Service) createConnection(c *gin.Context) { s.saveConnection(c, "") }

func (s *Service) updateConnection(c *gin.Context) { s.saveConnection(c, c.Param("id")) }

// saveConnection creates (id "") or replaces connection id. On an update an empty token
// keeps the stored one; a new one requires a token.
func (s *Service) saveConnection(c *gin.Context, id string) {
	var b ConnectionBody
	if err := httpx.Bind(c, &b); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m, err := b.toModel()
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	status := http.StatusCreated
	err = s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		now := time.Now().UTC()
		m.UpdatedAt = now
		if id == "" {
			if b.Token == "" {
				return apperr.Invalid("connection %s: a token is required", b.Name)
			}
			m.ID, m.CreatedAt, m.SyncState = ids.New(), now, SyncNever
		} else {
			var old ForgeConnection
			if err := tx.Where("id = ?", id).Take(&old).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return apperr.NotFound("connection %s not found", id)
				}
				return err
			}
			if old.Platform != m.Platform {
				return apperr.Invalid("connection %s: the platform cannot change (from %s to %s); create another connection", old.Name, old.Platform, m.Platform)
			}
			m.ID, m.CreatedAt, m.TokenSealed = old.ID, old.CreatedAt, old.TokenSealed
			m.SyncState, m.SyncError, m.SyncedAt = old.SyncState, old.SyncError, old.SyncedAt
			status = http.StatusOK
		}
		if b.Token != "" {
			sealed, err := s.cfg.Secrets.Seal([]byte(b.Token), TokenPlace(m.ID))
			if err != nil {
				return fmt.Errorf("seal token of connection %s: %w", m.Name, err)
			}
			m.TokenSealed = sealed
		}
		if err := tx.Save(&m).Error; err != nil {
			return dbError(err, "connection %q already exists", m.Name)
		}
		return nil
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(status, connectionBody(m))
}

// deleteConnection removes a connection and its synced repositories; projects built from
// it must be unlinked first, or their hooks and refs would point nowhere.
func (s *Service) deleteConnection(c *gin.Context) {
	id := c.Param("id")
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var names []string
		if err := tx.Model(&Project{}).Where("connection_id = ?", id).Order("name").Pluck("name", &names).Error; err != nil {
			return fmt.Errorf("find projects of connection %s: %w", id, err)
		}
		if len(names) > 0 {
			return apperr.Conflict("connection %s is the source of projects %s; unlink them first", id, strings.Join(names, ", "))
		}
		res := tx.Where("id = ?", id).Delete(&ForgeConnection{})
		if res.Error != nil {
			return fmt.Errorf("delete connection %s: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return apperr.NotFound("connection %s not found", id)
		}
		return nil
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
