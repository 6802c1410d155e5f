package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/artifact"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/pipeline"
)

// errShutdown marks a build stopped because this builder is shutting down.
var errShutdown = errors.New("builder shutting down")

// build runs one admitted run to the point where its artifact is ready, then hands it to
// the deployer. Failure finishes the run and frees its lock; shutdown puts it back in the
// queue.
func (s *Service) build(ctx context.Context, id string, lease coord.Lease) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r, err := runs.Get(s.db.WithContext(ctx), id)
	if err != nil {
		s.log.Error("load admitted run", "run", id, "err", err)
		return
	}
	// Build secrets are loaded before the log opens, so it masks their values from its
	// first line; each stage receives only those it declares (secrets.go).
	secrets, secretsErr := s.loadSecrets(ctx, r.ProjectID)
	logw, err := runlog.NewWriter(ctx, s.db.DB, id, s.logMasks(ctx, r.ProjectID, secrets))
	if err != nil {
		s.log.Error("open run log", "run", id, "err", err)
		s.fail(r, lease, err.Error())
		return
	}
	defer func() {
		if err := logw.Close(); err != nil {
			s.log.Error("close run log", "run", id, "err", err)
		}
	}()
	logw.Printf("admitted: lock %s token %d", lease.Key, lease.Token)
	if secretsErr != nil {
		logw.Printf("build failed: %v", secretsErr)
		if ferr := logw.Flush(); ferr != nil {
			s.log.Error("flush run log", "run", id, "err", ferr)
		}
		s.fail(r, lease, "build failed: "+secretsErr.Error())
		return
	}

	hbDone := make(chan struct{})
	progress := make(chan int, 8)
	go func() {
		defer close(hbDone)
		s.heartbeat(ctx, cancel, r.ID, lease, progress)
	}()

	built, err := s.produce(ctx, r, logw, secrets, progress)
	cancelled := ctx.Err() != nil
	cancel(nil)
	<-hbDone
	switch {
	case err == nil:
		s.handOff(r, lease, built, logw)
	case cancelled && errors.Is(context.Cause(ctx), errShutdown):
		logw.Printf("builder shutting down; run handed back to the queue")
		s.requeue(r, lease)
	case s.cancelRequested(r.ID) != "":
		msg := "cancelled by " + s.cancelRequested(r.ID)
		logw.Printf("%s", msg)
		if ferr := logw.Flush(); ferr != nil {
			s.log.Error("flush run log", "run", r.ID, "err", ferr)
		}
		s.finishAs(r, lease, runs.StatusCancelled, msg)
	default:
		logw.Printf("build failed: %v", err)
		// The log is complete before the run is final: readers stop at a final status.
		if ferr := logw.Flush(); ferr != nil {
			s.log.Error("flush run log", "run", r.ID, "err", ferr)
		}
		s.fail(r, lease, "build failed: "+err.Error())
	}
}

// heartbeat renews the lock lease and the run's heartbeat until ctx ends; losing either
// cancels the build, since another worker may now own the run.
func (s *Service) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, id string, lease coord.Lease, progress <-chan int) {
	t := time.NewTicker(s.cfg.HeartbeatEvery)
	defer t.Stop()
	pct := 10
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-progress:
			pct = p
			continue
		case <-t.C:
		}
		var err error
		if lease, err = s.coord.Renew(ctx, lease, s.cfg.LockTTL); err != nil {
			if ctx.Err() == nil {
				cancel(fmt.Errorf("lost the lock: %w", err))
			}
			return
		}
		ok, err := runs.Heartbeat(s.db.WithContext(ctx), id, lease.Token, pct)
		if err == nil && !ok {
			cancel(errors.New("run is no longer held by this builder"))
			return
		}
	}
}

// produce fetches and checks out run r's commit, decides how to build it (pipeline.Load),
// then reuses the artifact an earlier run built from the same commit and plan, or runs the
// plan's stages and packages what they leave.
func (s *Service) produce(ctx context.Context, r runs.Run, logw *runlog.Writer, secrets map[string]string, progress chan<- int) (events.RunBuilt, error) {
	if r.RollbackOf != "" { // nothing to build: rollback.go
		return s.rollbackTo(ctx, r, logw)
	}
	if s.cfg.BuildSandbox == SandboxNone {
		logw.Printf("warning: build stages run without a sandbox (--build-sandbox=none): they can read everything the builder can, fabu's keys and database included")
	} else if s.sandbox == nil {
		return events.RunBuilt{}, apperr.Unavailable("the build sandbox does not work, so no build runs: %v", s.sandboxErr)
	}
	p, _, err := s.loadProject(ctx, r.ProjectID)
	if err != nil {
		return events.RunBuilt{}, err
	}
	settings, err := p.settings()
	if err != nil {
		return events.RunBuilt{}, err
	}
	src, err := cleanSourceDir(p.SourceDir)
	if err != nil {
		return events.RunBuilt{}, err
	}
	out := logw.Stream(runlog.StreamStdout)
	start := time.Now()
	logw.Printf("fetching %s", redactURL(p.GitURL))
	remote, err := s.remoteURL(p) // credentials.go
	if err != nil {
		return events.RunBuilt{}, fmt.Errorf("fetch repository: %w", err)
	}
	mirror, err := s.ws.Mirror(ctx, orDefault(p.Platform, "git"), orDefault(p.Namespace, "default"), p.Name, remote, out)
	if err != nil {
		return events.RunBuilt{}, fmt.Errorf("fetch repository: %w", err)
	}
	sendProgress(progress, 15)
	want := r.CommitSHA
	if want == "" {
		want = r.Ref
	}
	commit, err := s.ws.Resolve(ctx, mirror, want)
	if err != nil {
		return events.RunBuilt{}, fmt.Errorf("resolve %s: %w", want, err)
	}
	if err := s.db.WithContext(ctx).Model(&runs.Run{}).Where("id = ?", r.ID).Update("commit_sha", commit).Error; err != nil {
		return events.RunBuilt{}, fmt.Errorf("record commit: %w", err)
	}
	logw.Printf("checking out %s (%s)", commit, r.Ref)
	work := filepath.Join(s.cfg.WorkspaceDir, "runs", r.ID)
	home := filepath.Join(s.cfg.WorkspaceDir, "homes", r.ID)
	scratch := filepath.Join(s.cfg.WorkspaceDir, "runs", r.ID+".pack")
	defer func() {
		for _, dir := range []string{work, home, scratch} {
			if err := s.ws.Cleanup(dir); err != nil {
				s.log.Warn("remove run directory", "run", r.ID, "dir", dir, "err", err)
			}
		}
	}()
	if err := s.ws.Checkout(ctx, mirror, commit, work); err != nil {
		return events.RunBuilt{}, fmt.Errorf("check out %s: %w", commit, err)
	}
	sendProgress(progress, progressCheckedOut)
	if fi, err := os.Stat(filepath.Join(work, filepath.FromSlash(src))); err != nil || !fi.IsDir() {
		return events.RunBuilt{}, apperr.Invalid("source dir %q does not exist in commit %s", p.SourceDir, commit)
	}
	if commit, err = s.mergeRefs(ctx, r, p, settings, mirror, commit, work, logw); err != nil {
		return events.RunBuilt{}, err // the merged commit is what is built, reused and deployed
	}
	settings.Commit = commit
	settings.ContainerCLI = s.cfg.ContainerCLI
	plan, err := pipeline.Load(work, settings)
	if err != nil {
		return events.RunBuilt{}, err // build logs it: file, line and reason
	}
	if plan.Artifact.Kind == pipeline.KindImage { // docker.go: build, push, record the digest
		return s.produceImage(ctx, imageBuild{run: r, project: p, plan: plan, commit: commit, work: work, home: home,
			log: logw, secrets: secrets, progress: progress, start: start})
	}
	if err := os.MkdirAll(s.cfg.ArtifactDir, 0o750); err != nil {
		return events.RunBuilt{}, fmt.Errorf("create artifact dir: %w", err)
	}
	dest := filepath.Join(s.cfg.ArtifactDir, r.ID+".tar.gz")
	built := events.RunBuilt{RunID: r.ID, ProjectID: r.ProjectID, Commit: commit, ArtifactPath: dest}
	declared, err := declaredSecrets(plan, secrets) // an unknown secret fails the run here
	if err != nil {
		return events.RunBuilt{}, err
	}
	fp := s.secretFingerprint(plan.Fingerprint(), declared, secrets)
	mi := manifestInput{run: r, projectName: p.Name, commit: commit, recipe: plan.Recipe, kind: plan.Artifact.Kind, fingerprint: fp, dest: dest}
	m, ok, err := s.reuse(ctx, fp, commit, dest)
	if err != nil {
		return events.RunBuilt{}, err
	}
	if ok {
		logw.Printf("reusing the artifact built for %s (fingerprint %s): %d bytes, sha256 %s", commit, fp[:12], m.Size, m.SHA256)
		built.ArtifactSHA256 = m.SHA256
		mi.packed, mi.reusedFrom = m, s.artifactOrigin(ctx, fp, commit)
		if built.ManifestSHA256, err = s.writeManifest(ctx, mi); err != nil {
			return events.RunBuilt{}, err
		}
		return built, nil
	}
	logw.Printf("build plan: recipe %s, %d stages, artifact %s %s (fingerprint %s), secrets: %s", plan.Recipe, len(plan.Stages), plan.Artifact.Kind, plan.Artifact.Path, fp[:12], secretNames(declared))
	s.restoreCaches(ctx, p.ID, work, home, plan, logw)
	// Only values that cannot change what a commit builds into, or the artifact could not
	// be reused by another run of the commit (see reuse.go).
	env := map[string]string{"FABU_COMMIT": commit, "FABU_REF": r.Ref, "FABU_RUN_ID": r.ID}
	sr := stageRun{runID: r.ID, root: work, home: home, path: s.cfg.BuildPath, env: env, secrets: secrets, log: logw, offline: p.BuildOffline}
	if err := s.runStages(ctx, sr, plan, progress); err != nil {
		return events.RunBuilt{}, err
	}
	m, err = packArtifact(ctx, plan.Artifact, work, scratch, dest)
	if err != nil {
		return events.RunBuilt{}, fmt.Errorf("package %s: %w", plan.Artifact.Path, err)
	}
	logw.Printf("packaged %d files, %d bytes, sha256 %s in %s", m.Files, m.Size, m.SHA256, time.Since(start).Round(time.Millisecond))
	built.ArtifactSHA256 = m.SHA256
	mi.packed = m
	if built.ManifestSHA256, err = s.writeManifest(ctx, mi); err != nil {
		return events.RunBuilt{}, err
	}
	if err := s.recordArtifact(ctx, fp, commit, plan.Artifact.Kind, dest, m); err != nil {
		s.log.Warn("record artifact for reuse", "run", r.ID, "err", err)
	}
	s.saveCaches(ctx, p.ID, work, home, plan, logw)
	return built, nil
}

// handOff moves the run to deploying and announces the artifact; the deployer takes over
// the lease from here.
func (s *Service) handOff(r runs.Run, lease coord.Lease, built events.RunBuilt, logw *runlog.Writer) {
	ctx := context.Background()
	built.LockKey, built.LockToken = lease.Key, lease.Token
	if built.ArtifactKind == "" && built.RollbackRelease == "" { // an image is pulled from its registry, a rollback's release is on the targets
		built.ArtifactURL = s.artifactURL(built.ArtifactPath) // signed download for a deployer elsewhere (artifacts.go)
	}
	if built.ManifestSHA256 != "" {
		built.ManifestURL = s.artifactURL(artifact.ManifestPath(built.ArtifactPath))
	}
	msg, err := events.New(events.TopicRunBuilt, r.ID, built)
	if err == nil {
		logw.Printf("artifact ready; handing over to the deployer")
		if err = logw.Flush(); err == nil {
			err = s.db.Tx(ctx, func(tx *gorm.DB) error {
				return runs.Advance(tx, r.ID, runs.Change{From: []runs.Status{runs.StatusBuilding}, To: runs.StatusDeploying,
					Token: lease.Token, Set: map[string]any{"artifact_path": built.ArtifactPath,
						"artifact_sha256": built.ArtifactSHA256, "commit_sha": built.Commit, "progress": 55,
						"heartbeat_at": time.Now().UTC()}}, msg)
			})
		}
	}
	if err != nil {
		s.log.Error("hand run to deployer", "run", r.ID, "err", err)
		s.fail(r, lease, "hand over to deployer: "+err.Error())
		return
	}
	s.kick()
}

// cancelRequested returns who asked to cancel run id, or "" when nobody did.
func (s *Service) cancelRequested(id string) string {
	by, ok, err := runs.CancelRequested(s.db.DB, id)
	if err != nil || !ok {
		return ""
	}
	if by == "" {
		by = "unknown user"
	}
	return by
}

// fail finishes run r as failed and frees its lock.
func (s *Service) fail(r runs.Run, lease coord.Lease, msg string) {
	s.finishAs(r, lease, runs.StatusFailed, msg)
}

// finishAs finishes run r with a final status and frees its lock.
func (s *Service) finishAs(r runs.Run, lease coord.Lease, status runs.Status, msg string) {
	ctx := context.Background()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		return runs.Finish(tx, r, []runs.Status{runs.StatusBuilding}, status, msg, lease.Token)
	})
	if err != nil {
		s.log.Error("fail run", "run", r.ID, "err", err)
	}
	s.release(lease)
	s.kick()
}

// requeue puts run r back at its queue's head in the database and frees its lock, so
// another builder admits it.
func (s *Service) requeue(r runs.Run, lease coord.Lease) {
	ctx := context.Background()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		return runs.Advance(tx, r.ID, runs.Change{From: []runs.Status{runs.StatusBuilding}, To: runs.StatusQueued,
			Token: lease.Token, Set: map[string]any{"lock_token": 0, "progress": 5}})
	})
	if err != nil {
		s.log.Error("hand run back", "run", r.ID, "err", err)
	}
	s.release(lease)
}

func (s *Service) release(lease coord.Lease) {
	if err := s.coord.Release(context.Background(), lease); err != nil && !errors.Is(err, coord.ErrNotHeld) {
		s.log.Error("release lock", "key", lease.Key, "err", err)
	}
}

// cleanSourceDir validates a project's source dir: relative, normalized, inside the
// repository.
func cleanSourceDir(dir string) (string, error) {
	if dir == "" {
		return ".", nil
	}
	c := path.Clean(dir)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsAny(c, "\x00\n\r") {
		return "", apperr.Invalid("source dir %q must be a relative path inside the repository", dir)
	}
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// redactURL hides a password or token embedded in a git URL before it is logged.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "****" + u[at:]
}
