// Package builder is fabu's builder service. It takes requested runs into per-target
// queues, admits the head of a queue when the target's lock is free, fetches the repository
// into a cached workspace, checks out the exact commit, builds it by the plan of its recipe,
// project pipeline or .fabu.yml (stages run as argv with caches restored, or skipped when the
// same commit was built by the same plan before), packages the artifact and hands the run to
// the deployer. A reconciler fails runs whose worker stopped heartbeating, so no run
// stays "running" forever.
package builder

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/container"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/events"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/services/builder/execx"
	"fabu.dev/services/builder/workspace"
)

// Consumer groups of the builder.
const (
	GroupRequests = "builder"
	GroupAdmit    = "builder-admit"
)

// Config configures the builder.
type Config struct {
	WorkspaceDir   string        // cached mirrors and per-run checkouts
	ArtifactDir    string        // where packaged artifacts go; shared with the deployer
	Git            string        // git binary; default "git"
	BuildPath      string        // PATH of build stages; default execx.DefaultPath
	LockTTL        time.Duration // lease of a target's lock; default 30s
	HeartbeatEvery time.Duration // lease renewal and run heartbeat; default LockTTL/6
	StaleAfter     time.Duration // a run without heartbeat this long is failed; default 2×LockTTL
	SweepEvery     time.Duration // queue rebuild, admission and reconciliation; default 2s
	Version        string        // the builder's version, written into artifact manifests
	// Secrets opens the projects' build secrets (secrets.go); without it a run of a project
	// that has secrets fails, saying the builder lacks the master key.
	Secrets *secret.Keyring
	// ContainerCLI builds and pushes docker projects' images (docker.go): docker
	// (default), podman, or an absolute path to one of them. ContainerEnv is added to its
	// environment and to every stage of a docker build: DOCKER_HOST, CONTAINER_HOST,
	// CONTAINERS_CONF … A project's registry password is opened with Secrets.
	ContainerCLI string
	ContainerEnv map[string]string
	// BuildSandbox isolates build stages, which are untrusted code: SandboxBwrap (the
	// default) runs each under bubblewrap (execx.Sandbox); SandboxNone is an explicit
	// opt-out, warned about in every run's log. With bubblewrap missing, the builder
	// fails every build saying how to install it rather than run it unisolated.
	BuildSandbox string
	// Sandbox configures bubblewrap: the stages' uid, extra read-only toolchain trees and
	// the paths stages must never see (the builder adds its workspace and artifact dirs).
	Sandbox execx.SandboxConfig
}

// Build sandboxes (Config.BuildSandbox).
const (
	SandboxBwrap = "bwrap"
	SandboxNone  = "none"
)

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.WorkspaceDir == "" || c.ArtifactDir == "" {
		return fmt.Errorf("builder: workspace and artifact directories are required")
	}
	if !filepath.IsAbs(c.WorkspaceDir) || !filepath.IsAbs(c.ArtifactDir) {
		return fmt.Errorf("builder: workspace and artifact directories must be absolute")
	}
	if c.Git == "" {
		c.Git = "git"
	}
	if c.BuildPath == "" {
		c.BuildPath = execx.DefaultPath
	}
	if c.ContainerCLI == "" {
		c.ContainerCLI = "docker"
	}
	if err := container.ValidCLI(c.ContainerCLI); err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	switch c.BuildSandbox {
	case "":
		c.BuildSandbox = SandboxBwrap
	case SandboxBwrap, SandboxNone:
	default:
		return fmt.Errorf("builder: build sandbox %q: want %s or %s", c.BuildSandbox, SandboxBwrap, SandboxNone)
	}
	if c.LockTTL == 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = c.LockTTL / 6
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 2 * c.LockTTL
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = 2 * time.Second
	}
	if c.HeartbeatEvery >= c.LockTTL {
		return fmt.Errorf("builder: heartbeat %s must be shorter than the lock lease %s", c.HeartbeatEvery, c.LockTTL)
	}
	return nil
}

// Service is the builder service.
type Service struct {
	cfg   Config
	db    *store.DB
	bus   bus.Subscriber
	coord coord.Coordinator
	ws    *workspace.Workspace
	log   *slog.Logger
	kick  func()

	artifacts atomic.Pointer[Artifacts] // set by ServeArtifacts: signed artifact URLs in RunBuilt

	registryClient *http.Client // asks registries whether an image to reuse is still there (docker.go)

	// sandbox isolates stages; nil with sandboxErr set when bubblewrap is missing or
	// broken (every build then fails with sandboxErr), nil alone when opted out.
	sandbox    *execx.Sandbox
	sandboxErr error

	wg      sync.WaitGroup // in-flight builds
	mu      sync.Mutex
	running map[string]context.CancelFunc
}

// New returns the builder service. kick, if not nil, wakes the outbox relay after commits.
func New(cfg Config, db *store.DB, sub bus.Subscriber, co coord.Coordinator, log *slog.Logger, kick func()) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kick == nil {
		kick = func() {}
	}
	ws := &workspace.Workspace{Base: cfg.WorkspaceDir, Git: cfg.Git}
	s := &Service{cfg: cfg, db: db, bus: sub, coord: co, ws: ws, log: log, kick: kick,
		running: map[string]context.CancelFunc{}, registryClient: &http.Client{Timeout: 30 * time.Second}}
	switch cfg.BuildSandbox {
	case SandboxNone:
		log.Warn("build stages run without a sandbox (--build-sandbox=none): every build can read what this process can, its keys and database included")
	default:
		sc := cfg.Sandbox
		sc.Hide = append(slices.Clone(sc.Hide), cfg.WorkspaceDir, cfg.ArtifactDir)
		s.sandbox, s.sandboxErr = execx.NewSandbox(sc)
		if s.sandboxErr != nil {
			log.Error("builds are refused until the build sandbox works", "err", s.sandboxErr)
		}
	}
	return s, nil
}

// container is the executor of stages that name an image: the builder's container CLI,
// running them as the sandbox's user when the builder is root.
func (s *Service) container() *execx.Container {
	c := &execx.Container{CLI: s.cfg.ContainerCLI, Env: s.cfg.ContainerEnv, Label: s.cfg.WorkspaceDir, UID: -1, GID: -1}
	if s.sandbox != nil && s.sandbox.UID() >= 0 {
		c.UID, c.GID = s.sandbox.UID(), s.sandbox.GID()
	}
	return c
}

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}, {Name: "build sandbox", Fn: func(context.Context) error { return s.sandboxErr }}}
}

// Run consumes run requests and finished runs, sweeps the queues and reconciles stale runs
// until ctx ends. On the way out it hands in-flight builds back to the queue.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.bus.Subscribe(gctx, events.TopicRunRequested, GroupRequests, s.onRequested) })
	g.Go(func() error { return s.bus.Subscribe(gctx, events.TopicRunFinished, GroupAdmit, s.onFinished) })
	g.Go(func() error { return s.bus.Subscribe(gctx, events.TopicRunFinished, GroupGitActions, s.onFinishedGit) })
	g.Go(func() error { s.sweepLoop(gctx); return nil })
	g.Go(func() error { s.sweepContainers(gctx); return nil })
	err := g.Wait()
	s.handBack()
	return err
}

// sweepContainers removes the stage containers a killed builder of this workspace left
// running; builds do not outlive their builder (handBack requeues them), so every one
// found at start is an orphan. Without a container CLI there is nothing to sweep.
func (s *Service) sweepContainers(ctx context.Context) {
	if _, err := exec.LookPath(s.cfg.ContainerCLI); err != nil {
		return
	}
	if err := s.container().Sweep(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("remove orphaned stage containers", "err", err)
	}
}

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handBack cancels in-flight builds and waits for them; each build, seeing its context
// cancelled by shutdown, returns its run to the queue for another builder.
func (s *Service) handBack() {
	s.mu.Lock()
	for _, cancel := range s.running {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
