package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/outbox"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/services/auth"
	"fabu.dev/services/builder"
	"fabu.dev/services/builder/execx"
	"fabu.dev/services/deployer"
	"fabu.dev/services/gateway"
	"fabu.dev/services/notifier"
	"fabu.dev/services/webhook"
	"fabu.dev/web"
)

// serviceNames are the services a process can run, in start order.
var serviceNames = []string{"auth", "gateway", "webhook", "builder", "deployer", "notifier"}

// stack is the backends a process runs its services on.
type stack struct {
	keys  *secret.Keyring // nil in processes that handle no secrets
	db    *store.DB
	bus   bus.Bus
	coord coord.Coordinator
	log   *slog.Logger
}

// pinger is a backend that can tell whether it answers.
type pinger interface {
	Ping(ctx context.Context) error
}

// service is what every fabu service offers the process that runs it.
type service interface {
	Run(ctx context.Context) error
	Checks() []httpx.Check
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// runProcess runs the named services on st until ctx ends: their HTTP routes on one
// listener, their consumers and background loops, and an outbox relay.
func runProcess(ctx context.Context, cfg serverConfig, st *stack, names []string) error {
	relay := &outbox.Relay{DB: st.db.DB, Publisher: st.bus, Logger: st.log}
	kick := relay.Kick
	engine := httpx.NewEngine(st.log)
	checks := []httpx.Check{{Name: "database", Fn: st.db.Ping}}
	if p, ok := st.bus.(pinger); ok {
		checks = append(checks, httpx.Check{Name: "bus", Fn: p.Ping})
	}
	if p, ok := st.coord.(pinger); ok {
		checks = append(checks, httpx.Check{Name: "coordination", Fn: p.Ping})
	}
	var svcs []service
	for _, name := range names {
		s, err := newService(name, cfg, st, engine, kick)
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		svcs = append(svcs, s)
		checks = append(checks, s.Checks()...)
	}
	httpx.Health(engine, dedupe(checks)...)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	st.log.Info("fabu is serving", "services", names, "url", "http://"+ln.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	svcCtx, stopSvcs := context.WithCancel(context.WithoutCancel(gctx))
	defer stopSvcs()
	context.AfterFunc(gctx, stopSvcs)
	relayCtx, stopRelay := context.WithCancel(context.Background())
	defer stopRelay()
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	g.Go(func() error { return httpx.Serve(gctx, ln, engine, 15*time.Second) })
	for i, s := range svcs {
		g.Go(func() error {
			if err := s.Run(svcCtx); err != nil && svcCtx.Err() == nil {
				return fmt.Errorf("%s: %w", names[i], err)
			}
			return nil
		})
	}
	err = g.Wait()
	// The relay stops last, so events written while services wound down are published now
	// rather than at the next start.
	relay.Kick()
	stopRelay()
	if rerr := <-relayDone; rerr != nil {
		st.log.Error("outbox relay stopped", "err", rerr)
	}
	return err
}

func dedupe(cs []httpx.Check) []httpx.Check {
	seen := map[string]bool{}
	return slices.DeleteFunc(cs, func(c httpx.Check) bool {
		dup := seen[c.Name]
		seen[c.Name] = true
		return dup
	})
}

func newService(name string, cfg serverConfig, st *stack, e *gin.Engine, kick func()) (service, error) {
	switch name {
	case "auth":
		s, err := auth.New(auth.Config{Keys: st.keys, TrustedProxies: trustedProxies(), OAuth: cfg.OAuth.config(cfg.PublicURL)}, st.db, st.log.With("service", "auth"))
		if err != nil {
			return nil, err
		}
		s.Routes(e)
		return s, ensureAdmin(s)
	case "gateway":
		s, err := gateway.New(gateway.Config{Secrets: st.keys, Web: web.Dist(), ForgeConfig: gateway.ForgeConfig{PublicURL: cfg.PublicURL},
			AllowedLocalRepos: cfg.AllowedLocalRepos, // local repositories only under these (save time)
			RetentionConfig:   gateway.RetentionConfig{AuditRetention: days(cfg.AuditRetention), LogRetention: days(cfg.LogRetention)},
			// The web terminal signs in with the deployer's key: the same file in one process,
			// a copy of it in the gateway's data dir when they run apart.
			TerminalConfig: gateway.TerminalConfig{SSHKeyPath: filepath.Join(cfg.DataDir, "ssh", "id_ed25519")}}, st.db, st.log.With("service", "gateway"), kick)
		if err != nil {
			return nil, err
		}
		if err := proxy(e, "/api/v1/auth", cfg.AuthURL); err != nil {
			return nil, err
		}
		if err := proxyPath(e, "/.well-known/jwks.json", cfg.AuthURL); err != nil {
			return nil, err
		}
		if err := proxy(e, "/hooks", cfg.WebhookURL); err != nil {
			return nil, err
		}
		if err := proxyExact(e, "/trigger", cfg.WebhookURL); err != nil {
			return nil, err
		}
		s.Routes(e)
		return s, nil
	case "webhook":
		s, err := webhook.New(webhook.Config{Retention: days(cfg.DeliveryRetention)}, st.db, st.keys, verifiers(), st.log.With("service", "webhook"), kick)
		if err != nil {
			return nil, err
		}
		s.Routes(e)
		return s, nil
	case "builder":
		s, err := builder.New(builder.Config{
			WorkspaceDir: filepath.Join(cfg.DataDir, "workspaces"),
			ArtifactDir:  filepath.Join(cfg.DataDir, "artifacts"),
			LockTTL:      cfg.LockTTL,
			ContainerCLI: cfg.ContainerCLI,
			BuildSandbox: cfg.BuildSandbox,
			Sandbox: execx.SandboxConfig{UID: cfg.BuildUID, GID: cfg.BuildUID, ExtraReadOnly: cfg.BuildReadOnly,
				Hide: absPaths(cfg.DataDir, cfg.ConfigFile, cfg.MasterKeyFile)}, // never seen by a build
			Secrets: st.keys, // registry passwords and build secrets
			Version: version, // written into artifact manifests
		}, st.db, st.bus, st.coord, st.log.With("service", "builder"), kick)
		if err != nil {
			return nil, err
		}
		return serveArtifacts(s, cfg, st, e)
	case "deployer":
		return deployer.New(deployer.Config{
			KeyPath:     filepath.Join(cfg.DataDir, "ssh", "id_ed25519"),
			ArtifactDir: filepath.Join(cfg.DataDir, "artifacts"), // shared when the builder has the same data dir
			LockTTL:     cfg.LockTTL,
			Secrets:     st.keys, // docker projects' registry passwords
		}, st.db, st.bus, st.coord, st.log.With("service", "deployer"), kick)
	case "notifier":
		return notifier.New(st.db, st.bus, st.log.With("service", "notifier")), nil
	}
	return nil, fmt.Errorf("unknown service %q (known: %v)", name, serviceNames)
}

// absPaths returns the absolute forms of the non-empty paths.
func absPaths(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if a, err := filepath.Abs(p); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// ensureAdmin creates the first administrator; a generated password is printed once.
func ensureAdmin(s *auth.Service) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pw, err := s.EnsureAdmin(ctx, os.Getenv("FABU_ADMIN_PASSWORD"))
	if err != nil {
		return err
	}
	if pw != "" {
		fmt.Fprintf(os.Stderr, "\n  Created user admin with password: %s\n  It is shown only this once; set FABU_ADMIN_PASSWORD to choose it yourself.\n\n", pw)
	}
	return nil
}

// proxy forwards prefix to the service at target, when that service runs elsewhere.
func proxy(e *gin.Engine, prefix, target string) error {
	if target == "" {
		return nil
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q for %s is not an http(s) URL", target, prefix)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = stripSecurityHeaders
	h := func(c *gin.Context) { rp.ServeHTTP(c.Writer, c.Request) }
	e.Any(prefix+"/*path", h)
	return nil
}

// stripSecurityHeaders drops the upstream service's security headers: this process's engine
// has set the same ones, and a header sent twice is one that browsers may misread.
func stripSecurityHeaders(r *http.Response) error {
	httpx.StripSecurityHeaders(r.Header)
	return nil
}

// proxyPath forwards exactly path (the auth service's JWKS) to target, when set.
func proxyPath(e *gin.Engine, path, target string) error {
	if target == "" {
		return nil
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("upstream %q for %s is not an http(s) URL", target, path)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = stripSecurityHeaders
	e.GET(path, func(c *gin.Context) { rp.ServeHTTP(c.Writer, c.Request) })
	return nil
}

// trustedProxies are the addresses (CIDRs, comma-separated in FABU_AUTH_TRUSTED_PROXIES)
// whose X-Forwarded-For the auth service believes for its per-address login limit: the
// gateways, when auth runs in its own process behind them.
func trustedProxies() []string {
	var out []string
	for _, p := range strings.Split(os.Getenv("FABU_AUTH_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// proxyExact forwards path and everything below it (the trigger URL is POST /trigger with
// a bearer token, or POST /trigger/<token>).
func proxyExact(e *gin.Engine, path, target string) error {
	if target == "" {
		return nil
	}
	if err := proxy(e, path, target); err != nil {
		return err
	}
	u, _ := url.Parse(target) // proxy validated it
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = stripSecurityHeaders
	e.Any(path, func(c *gin.Context) { rp.ServeHTTP(c.Writer, c.Request) })
	return nil
}

// serveArtifacts mounts the builder's artifact store at GET /internal/artifacts/:name for
// URLs signed with a key derived from the master keys, which every builder process shares,
// and runs retention beside the builder.
func serveArtifacts(s *builder.Service, cfg serverConfig, st *stack, e *gin.Engine) (service, error) {
	keys := st.keys
	if keys == nil { // `serve builder` without gateway or webhook in the process
		var err error
		if keys, err = loadKeyring(cfg, false); err != nil {
			return nil, fmt.Errorf("artifact URLs are signed with a key derived from the master key: %w", err)
		}
	}
	retention := days(cfg.ArtifactRetention)
	if cfg.ArtifactRetention == 0 {
		retention = -1 // keep everything
	}
	a, err := s.ServeArtifacts(builder.ArtifactConfig{
		BaseURL:   cfg.ArtifactURL,
		Keys:      keys.Derive(artifact.SigningPurpose),
		Retention: retention,
	})
	if err != nil {
		return nil, err
	}
	e.GET(artifact.RoutePrefix+":name", gin.WrapH(a.Handler()))
	return services{s, a}, nil
}

// services runs several services as one: all run until the first fails.
type services []service

func (ss services) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range ss {
		g.Go(func() error { return s.Run(gctx) })
	}
	return g.Wait()
}

func (ss services) Checks() []httpx.Check {
	var cs []httpx.Check
	for _, s := range ss {
		cs = append(cs, s.Checks()...)
	}
	return cs
}

// days is n days as a duration; 0 stays 0, which the gateway's retention reads as forever.
func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
