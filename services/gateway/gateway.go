// Package gateway is fabu's gateway service: the REST API under /api/v1 for servers,
// projects, runs and their logs (stored and live over WebSocket), and the single-page app.
// It authenticates every API request with the tokens the auth service issues.
package gateway

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// Config configures the gateway.
type Config struct {
	Secrets      *secret.Keyring // seals webhook secrets; required
	Web          fs.FS           // the built SPA; nil serves no SPA
	LogPoll      time.Duration   // how often a live log checks for new lines; default 250ms
	MaxRunsLimit int             // largest page of runs; default 200
	// AllowedLocalRepos are the directories under which a project's git_url may name a
	// repository on this machine (a path or a file:// URL); none by default (savecheck.go).
	AllowedLocalRepos []string
	ForgeConfig       // public URL for hooks, periodic sync of connections, forge clients (connections.go)
	TicketConfig      // how often approved release tickets are started and old ones expired (tickets_loop.go)
	RetentionConfig   // how long audit entries and run logs are kept (retention.go)
	TerminalConfig    // the web terminal's SSH key and idle limit (terminal.go)
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.Secrets == nil {
		return errors.New("gateway: a secrets keyring is required")
	}
	if c.LogPoll == 0 {
		c.LogPoll = 250 * time.Millisecond
	}
	if c.MaxRunsLimit == 0 {
		c.MaxRunsLimit = 200
	}
	dirs, err := cleanDirs("gateway: allowed local repos", c.AllowedLocalRepos)
	if err != nil {
		return err
	}
	c.AllowedLocalRepos = dirs
	return nil
}

// Service is the gateway service.
type Service struct {
	cfg   Config
	db    *store.DB
	log   *slog.Logger
	kick  func()
	authn *authn.Authenticator // verifies access and API tokens (authn.go)
}

// New returns the gateway. kick, if not nil, wakes the outbox relay after a run is requested.
func New(cfg Config, db *store.DB, log *slog.Logger, kick func()) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kick == nil {
		kick = func() {}
	}
	return &Service{cfg: cfg, db: db, log: log, kick: kick, authn: authn.New(db.DB, nil)}, nil
}

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}}
}

// Run syncs the forge connections and applies retention periodically until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	// Approved release tickets start when due and old ones expire (tickets_loop.go).
	defer s.startTickets(ctx)()
	defer s.startSync(ctx)() // periodic sync of forge connections (sync.go)
	s.runRetention(ctx)      // audit log and run log retention (retention.go); returns when ctx ends
	<-ctx.Done()
	return nil
}

// Routes mounts the API and the SPA on e.
func (s *Service) Routes(e *gin.Engine) {
	api := e.Group("/api/v1", s.recordAudit, s.authenticate) // every change is audited, refusals too (audit.go)
	api.Use(s.authorize)                                     // every route's permission rule (authz.go); a route without one is refused
	s.auditRoutes(api)                                       // GET /audit, /audit/export.csv (audit_api.go)
	api.GET("/me", s.me)
	api.GET("/servers", s.listServers)
	api.POST("/servers", s.createServer)
	api.GET("/servers/:id", s.getServer)
	api.GET("/servers/:id/terminal", s.terminal) // WebSocket (terminal.go)
	api.PUT("/servers/:id", s.updateServer)
	api.DELETE("/servers/:id", s.deleteServer)
	api.GET("/projects", s.listProjects)
	api.POST("/projects", s.createProject)
	api.GET("/projects/:id", s.getProject)
	api.PUT("/projects/:id", s.updateProject)
	api.DELETE("/projects/:id", s.deleteProject)
	api.POST("/projects/:id/runs", s.startRun)
	s.triggerLinkRoutes(api) // GET, POST, DELETE /projects/:id/trigger-token (triggerlink.go)
	api.POST("/apply", s.apply)
	api.GET("/deliveries", s.listDeliveries) // deliveries.go
	api.GET("/runs", s.listRuns)
	api.GET("/runs/:id", s.getRun)
	api.POST("/runs/:id/cancel", s.cancelRun)
	api.POST("/runs/:id/rollback", s.rollbackRun)
	api.GET("/runs/:id/logs", s.getLogs)
	api.GET("/runs/:id/git", s.getRunGit)
	api.GET("/runs/:id/logs/ws", s.streamLogs)
	api.GET("/ssh/public-key", s.publicKey)
	s.forgeRoutes(api)  // connections, repos, project source, refs and hook (connections.go)
	s.accessRoutes(api) // users, user/project/server groups, members, project access (users*.go)
	s.buildRoutes(api)  // build secrets (write-only) and artifact manifests (secrets_api.go)
	s.ticketRoutes(api) // release tickets and a project's environment rules (tickets*.go)
	if s.cfg.Web != nil {
		e.NoRoute(s.spa)
	}
}

func (s *Service) me(c *gin.Context) { c.JSON(http.StatusOK, currentUser(c)) }
