package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"fabu.dev/libs/coord"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/sshx"
)

// project is what the deployer reads of a project.
type project struct {
	ID           string
	Name         string
	DeployPath   string
	KeepReleases int
	// Docker projects (docker.go): container settings as JSON, the sealed registry password.
	DockerSettings       string
	DockerPasswordSealed string
}

func (project) TableName() string { return "projects" }

// server is what the deployer reads of a target server.
type server struct {
	Name    string
	Host    string
	Port    int
	SSHUser string `gorm:"column:ssh_user"`
	HostKey string
}

func (s server) target() sshx.Target {
	return sshx.Target{Name: s.Name, Host: s.Host, Port: s.Port, User: s.SSHUser, HostKey: s.HostKey}
}

// deploy ships run ev.RunID and finishes it. Its lease is the one the builder took for the
// run; the deployer renews it under the same owner and token and releases it at the end.
func (s *Service) deploy(ctx context.Context, ev events.RunBuilt) {
	lease := coord.Lease{Key: ev.LockKey, Owner: ev.RunID, Token: ev.LockToken}
	r, err := runs.Get(s.db.WithContext(ctx), ev.RunID)
	if err != nil {
		s.log.Error("load run to deploy", "run", ev.RunID, "err", err)
		return
	}
	if r.Status != runs.StatusDeploying || r.LockToken != ev.LockToken {
		s.log.Warn("run is not waiting for a deploy; skipped", "run", r.ID, "status", r.Status)
		return
	}
	logw, err := runlog.NewWriter(ctx, s.db.DB, r.ID, nil)
	if err != nil {
		s.finish(r, lease, runs.StatusFailed, "open run log: "+err.Error(), "")
		return
	}
	dctx, cancel := context.WithCancelCause(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(dctx, cancel, r.ID, lease)
	}()
	release, err := s.ship(dctx, r, ev, logw)
	if err != nil && context.Cause(dctx) != nil && !errors.Is(context.Cause(dctx), context.Canceled) {
		err = fmt.Errorf("%w: %w", err, context.Cause(dctx))
	}
	cancel(nil)
	<-hbDone
	cancelBy := ""
	if err != nil {
		if by, ok, cerr := runs.CancelRequested(s.db.DB, r.ID); cerr == nil && ok {
			if by == "" {
				by = "unknown user"
			}
			cancelBy = by
			logw.Printf("cancelled by %s", by)
		} else {
			logw.Printf("deploy failed: %v", err)
		}
	} else {
		logw.Printf("deployed release %s; run succeeded", release)
	}
	if cerr := logw.Close(); cerr != nil {
		s.log.Error("close run log", "run", r.ID, "err", cerr)
	}
	if cancelBy != "" {
		s.finish(r, lease, runs.StatusCancelled, "cancelled by "+cancelBy, "")
		return
	}
	if err != nil {
		s.finish(r, lease, runs.StatusFailed, "deploy failed: "+err.Error(), "")
		return
	}
	s.finish(r, lease, runs.StatusSucceeded, "", release)
}

func (s *Service) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, id string, lease coord.Lease) {
	t := time.NewTicker(s.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if lease, err = s.coord.Renew(ctx, lease, s.cfg.LockTTL); err != nil {
			if ctx.Err() == nil {
				cancel(fmt.Errorf("%w: %w", errLostLock, err))
			}
			return
		}
		if ok, err := runs.Heartbeat(s.db.WithContext(ctx), id, lease.Token, -1); err == nil && !ok {
			cancel(errors.New("run is no longer held by this deployer"))
			return
		}
	}
}

// finish records the run's outcome, and for a success the release now live (the run's own,
// or for a rollback the one it put back), and frees the target lock, which lets the builder
// admit the next queued run.
func (s *Service) finish(r runs.Run, lease coord.Lease, status runs.Status, msg, release string) {
	ctx := context.Background()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if status == runs.StatusSucceeded {
			if err := tx.Model(&runs.Run{}).Where("id = ?", r.ID).Update("release_id", release).Error; err != nil {
				return fmt.Errorf("record release: %w", err)
			}
		}
		return runs.Finish(tx, r, []runs.Status{runs.StatusDeploying}, status, msg, lease.Token)
	})
	if err != nil {
		s.log.Error("finish run", "run", r.ID, "err", err)
	}
	if err := s.coord.Release(ctx, lease); err != nil && !errors.Is(err, coord.ErrNotHeld) {
		s.log.Error("release lock", "key", lease.Key, "err", err)
	}
	s.kick()
}

// ship verifies the artifact, stages the release on every server, then switches them all.
// A failure before the switch leaves every server on its old `current`.
func (s *Service) ship(ctx context.Context, r runs.Run, ev events.RunBuilt, logw *runlog.Writer) (string, error) {
	var p project
	if err := s.db.WithContext(ctx).Where("id = ?", r.ProjectID).Take(&p).Error; err != nil {
		return "", fmt.Errorf("load project: %w", err)
	}
	var servers []server
	err := s.db.WithContext(ctx).Table("servers").Select("servers.name, servers.host, servers.port, servers.ssh_user, servers.host_key").
		Joins("JOIN project_servers ps ON ps.server_id = servers.id").Where("ps.project_id = ?", p.ID).
		Order("servers.name").Scan(&servers).Error
	if err != nil {
		return "", fmt.Errorf("load servers: %w", err)
	}
	if len(servers) == 0 {
		return "", errors.New("the project has no target servers")
	}
	if ev.RollbackRelease != "" { // a release still on the targets: rollback.go
		return s.switchBack(ctx, r, p, servers, ev, logw)
	}
	if ev.ArtifactKind == events.ArtifactImage { // a container image: docker.go
		return s.shipImage(ctx, r, p, servers, ev, logw)
	}
	// The builder's file, or a verified copy fetched from the builder (fetch.go).
	local, done, err := s.localArtifact(ctx, ev, logw)
	if err != nil {
		return "", err
	}
	defer done()
	ev.ArtifactPath = local
	layout, err := newLayout(p.DeployPath, r.ID)
	if err != nil {
		return "", err
	}
	hosts := make([]*host, len(servers))
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.close()
			}
		}
	}()
	logw.Printf("deploying release %s to %d server(s) under %s", r.ID, len(servers), p.DeployPath)
	g, gctx := errgroup.WithContext(ctx)
	for i, sv := range servers {
		g.Go(func() error {
			h, err := s.stageOn(gctx, sv, layout, ev, logw)
			hosts[i] = h
			return err
		})
	}
	if err := g.Wait(); err != nil {
		s.discard(hosts, layout, logw)
		return "", err
	}
	s.progress(r.ID, 80)
	for _, h := range hosts {
		if err := h.switchCurrent(ctx, layout); err != nil {
			return "", fmt.Errorf("%s: switch current: %w", h.name, err)
		}
		logw.Printf("%s: switched current to releases/%s", h.name, r.ID)
	}
	keep := p.KeepReleases
	if keep < 1 {
		keep = 5
	}
	for _, h := range hosts {
		removed, err := h.prune(ctx, layout, keep)
		if err != nil { // the release is live; a failed cleanup is worth a line, not a failure
			logw.Printf("%s: pruning old releases failed: %v", h.name, err)
			continue
		}
		if len(removed) > 0 {
			logw.Printf("%s: removed old releases %s", h.name, strings.Join(removed, ", "))
		}
	}
	return r.ID, nil
}

// stageOn connects to one server and puts the verified release in place beside the live one.
func (s *Service) stageOn(ctx context.Context, sv server, l layout, ev events.RunBuilt, logw *runlog.Writer) (*host, error) {
	h, err := s.connect(ctx, sv, logw)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(ev.ArtifactPath)
	if err != nil {
		return h, fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	got, err := h.stage(ctx, l, f)
	if err != nil {
		return h, fmt.Errorf("%s: upload and unpack under %s: %w", sv.Name, l.root, err)
	}
	if got != ev.ArtifactSHA256 {
		return h, fmt.Errorf("%s: uploaded artifact checksum %q does not match %s", sv.Name, got, ev.ArtifactSHA256)
	}
	logw.Printf("%s: release staged and verified (sha256 %s)", sv.Name, got)
	return h, nil
}

// connect opens an SSH connection to one server, its host key checked against the pinned one.
func (s *Service) connect(ctx context.Context, sv server, logw *runlog.Writer) (*host, error) {
	t := sv.target()
	cl, err := sshx.Dial(ctx, t, s.signer, s.cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sv.Name, err)
	}
	logw.Printf("%s: connected to %s@%s (host key verified)", sv.Name, sv.SSHUser, t.Addr())
	return &host{name: sv.Name, c: cl, out: logw.Stream(runlog.StreamStdout), errw: logw.Stream(runlog.StreamStderr)}, nil
}

// discard removes a staged release from servers after a failed deploy, best effort.
func (s *Service) discard(hosts []*host, l layout, logw *runlog.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range hosts {
		if h == nil {
			continue
		}
		if err := h.remove(ctx, l); err != nil {
			logw.Printf("%s: could not remove the failed release: %v", h.name, err)
		}
	}
}

func (s *Service) progress(id string, pct int) {
	err := s.db.Model(&runs.Run{}).Where("id = ? AND status = ?", id, runs.StatusDeploying).Update("progress", pct).Error
	if err != nil {
		s.log.Warn("record progress", "run", id, "err", err)
	}
}
