package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/artifact"
	"fabu.dev/libs/container"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/execx"
	"fabu.dev/services/builder/pipeline"
)

// Docker projects. The plan's stages build the image (pipeline's docker recipe, or the
// project's own stages) tagged <repository>:<commit, 12 digits>; then the builder pushes it
// as one more stage, "push", with the container CLI of Config.ContainerCLI. Registry
// credentials never reach a command line or the log: the sealed password is opened here and
// written with the user name into an auth file (0600) in a private temporary directory that
// DOCKER_CONFIG and REGISTRY_AUTH_FILE point at, removed after the push. The artifact is
// the image pinned by the digest the registry stored (podman's --digestfile, docker's
// RepoDigests), recorded in the artifacts table like a tar.gz: a later run of the same
// commit and plan reuses it without building once the registry still has it, which is what
// makes re-deploying (and rolling back to) an older commit cheap.

// imageBuild is what produceImage needs from produce.
type imageBuild struct {
	run      runs.Run
	project  project
	plan     pipeline.Plan
	commit   string
	work     string
	home     string
	log      *runlog.Writer
	secrets  map[string]string
	progress chan<- int
	start    time.Time
}

// produceImage builds, pushes and records a docker run's image, or reuses the one an
// earlier run of the commit pushed.
func (s *Service) produceImage(ctx context.Context, b imageBuild) (events.RunBuilt, error) {
	p, r, logw := b.project, b.run, b.log
	settings, err := container.Parse(p.DockerSettings)
	if err != nil {
		return events.RunBuilt{}, err
	}
	registry, _, err := container.ParseRepository(p.BuildImage)
	if err != nil {
		return events.RunBuilt{}, err
	}
	password, err := s.registryPassword(p)
	if err != nil {
		return events.RunBuilt{}, err
	}
	built := events.RunBuilt{RunID: r.ID, ProjectID: r.ProjectID, Commit: b.commit, ArtifactKind: events.ArtifactImage}
	fp := b.plan.Fingerprint()
	if ref, ok := s.reuseImage(ctx, fp, b.commit, settings, registry, password, logw); ok {
		logw.Printf("reusing the image built for %s (fingerprint %s): %s", b.commit, fp[:12], ref)
		built.ArtifactPath, built.ArtifactSHA256 = ref.String(), strings.TrimPrefix(ref.Digest, "sha256:")
		return built, nil
	}
	logw.Printf("build plan: recipe %s, %d stages, image %s (fingerprint %s), pushed with %s", b.plan.Recipe,
		len(b.plan.Stages), b.plan.Artifact.Path, fp[:12], s.cfg.ContainerCLI)

	auth, err := os.MkdirTemp("", "fabu-registry-auth-")
	if err != nil {
		return events.RunBuilt{}, fmt.Errorf("registry auth dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(auth) }()
	authFile := filepath.Join(auth, "config.json")
	content := []byte(`{"auths":{}}`)
	if settings.Username != "" && password != "" { // a user without a password: anonymous
		content = container.AuthFile(registry, settings.Username, password)
	}
	if err := os.WriteFile(authFile, content, 0o600); err != nil {
		return events.RunBuilt{}, fmt.Errorf("registry auth file: %w", err)
	}
	env := map[string]string{"FABU_COMMIT": b.commit, "FABU_REF": r.Ref, "FABU_RUN_ID": r.ID}
	for k, v := range s.cfg.ContainerEnv {
		env[k] = v
	}
	env["DOCKER_CONFIG"], env["REGISTRY_AUTH_FILE"] = auth, authFile
	sr := stageRun{runID: r.ID, root: b.work, home: b.home, path: s.cfg.BuildPath, env: env, secrets: b.secrets, log: logw, offline: p.BuildOffline}
	if err := s.runStages(ctx, sr, b.plan, b.progress); err != nil {
		return events.RunBuilt{}, err
	}
	tag := b.plan.Artifact.Path
	defer s.untag(sr, tag) // the registry has it now; the builder's disk need not keep it

	cli := s.cfg.ContainerCLI
	pushArgs := append([]string{cli, "push"}, settings.TLSFlags()...)
	digestFile := filepath.Join(auth, "digest")
	if container.IsPodman(cli) {
		pushArgs = append(pushArgs, "--digestfile", digestFile)
	}
	extra := []pipeline.Stage{{Name: "push", Command: append(pushArgs, tag), Timeout: pipeline.DefaultTimeout, Engine: true}}
	if t := container.TagOf(r.Ref); settings.TagRef && t != "" && !strings.HasSuffix(tag, ":"+t) {
		refTag := p.BuildImage + ":" + t
		extra = append(extra,
			pipeline.Stage{Name: "tag-ref", Command: []string{cli, "tag", tag, refTag}, Timeout: pipeline.DefaultTimeout, Engine: true},
			pipeline.Stage{Name: "push-ref", Command: append(append([]string{cli, "push"}, settings.TLSFlags()...), refTag), Timeout: pipeline.DefaultTimeout, Engine: true})
		defer s.untag(sr, refTag)
	}
	for i, st := range extra {
		if err := s.runStage(ctx, sr, b.plan, len(b.plan.Stages)+i, st); err != nil {
			s.skipStages(r.ID, extra[i+1:], len(b.plan.Stages)+i+2)
			return events.RunBuilt{}, err
		}
	}
	digest, err := s.pushedDigest(ctx, sr, tag, digestFile, p.BuildImage)
	if err != nil {
		return events.RunBuilt{}, err
	}
	ref := container.Ref{Repository: p.BuildImage, Digest: digest}
	logw.Printf("pushed %s in %s", ref, time.Since(b.start).Round(time.Millisecond))
	built.ArtifactPath, built.ArtifactSHA256 = ref.String(), strings.TrimPrefix(digest, "sha256:")
	if err := s.recordArtifact(ctx, fp, b.commit, pipeline.KindImage, ref.String(), artifact.Manifest{SHA256: built.ArtifactSHA256}); err != nil {
		s.log.Warn("record image for reuse", "run", r.ID, "err", err)
	}
	return built, nil
}

// logMasks are the values the run log of project pid hides: its build secrets and its
// registry password. fabu never prints the password, but a Dockerfile or a tool might
// (podman echoes every Dockerfile instruction). A password that does not open is left to
// the push, which fails with the reason.
func (s *Service) logMasks(ctx context.Context, pid string, secrets map[string]string) []string {
	hidden := make(map[string]string, len(secrets)+1)
	maps.Copy(hidden, secrets)
	if p, _, err := s.loadProject(ctx, pid); err == nil {
		if pw, err := s.registryPassword(p); err == nil && pw != "" {
			hidden["\x00registry password"] = pw // not a variable name: never handed to a stage
		}
	}
	return execx.Spec{Secrets: hidden}.Masks()
}

// registryPassword opens project p's sealed registry password; "" when it has none.
func (s *Service) registryPassword(p project) (string, error) {
	if p.DockerPasswordSealed == "" {
		return "", nil
	}
	if s.cfg.Secrets == nil {
		return "", apperr.Unavailable("project %s has a registry password, but this builder has no master key to open it (set FABU_MASTER_KEY or --master-key-file)", p.Name)
	}
	b, err := s.cfg.Secrets.Open(p.DockerPasswordSealed, container.PasswordPlace(p.ID))
	if err != nil {
		return "", fmt.Errorf("open the registry password of %s: %w", p.Name, err)
	}
	return string(b), nil
}

// pushedDigest is the digest the registry stored for tag: podman writes it to the digest
// file; docker records it in the image's RepoDigests.
func (s *Service) pushedDigest(ctx context.Context, sr stageRun, tag, digestFile, repo string) (string, error) {
	if container.IsPodman(s.cfg.ContainerCLI) {
		b, err := os.ReadFile(digestFile)
		if err != nil {
			return "", fmt.Errorf("read the pushed digest: %w", err)
		}
		d := strings.TrimSpace(string(b))
		if err := container.ValidDigest(d); err != nil {
			return "", fmt.Errorf("the push reported %w", err)
		}
		return d, nil
	}
	var out bytes.Buffer
	_, err := execx.Run(ctx, execx.Spec{Name: "inspect", Argv: []string{s.cfg.ContainerCLI, "image", "inspect", "--format",
		"{{range .RepoDigests}}{{println .}}{{end}}", tag}, Root: sr.root, Home: sr.home, Path: sr.path, Env: sr.env,
		Timeout: time.Minute, Stdout: &out, Stderr: sr.log.Stream(runlog.StreamStderr)})
	if err != nil {
		return "", fmt.Errorf("find the pushed digest: %w", err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if r, d, ok := strings.Cut(strings.TrimSpace(line), "@"); ok && r == repo && container.ValidDigest(d) == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("the pushed image %s has no digest of %s", tag, repo)
}

// untag removes a local tag after the push, best effort.
func (s *Service) untag(sr stageRun, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := execx.Run(ctx, execx.Spec{Name: "untag", Argv: []string{s.cfg.ContainerCLI, "rmi", tag}, Root: sr.root,
		Home: sr.home, Path: sr.path, Env: sr.env, Timeout: time.Minute})
	if err != nil {
		s.log.Warn("remove the local image tag after the push", "run", sr.runID, "tag", tag, "err", err)
	}
}

// reuseImage returns the image an earlier run of commit pushed under fingerprint, when the
// registry still has it.
func (s *Service) reuseImage(ctx context.Context, fingerprint, commit string, st container.Settings, registry, password string, logw *runlog.Writer) (container.Ref, bool) {
	var a artifactRow
	err := s.db.WithContext(ctx).Where("fingerprint = ? AND commit_sha = ? AND kind = ?", fingerprint, commit, pipeline.KindImage).Take(&a).Error
	if err != nil {
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			s.log.Warn("look up built images", "err", err)
		}
		return container.Ref{}, false
	}
	ref, err := container.ParseRef(a.Path)
	if err != nil {
		return container.Ref{}, false
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := container.HasManifest(cctx, s.registryClient, ref, st.Insecure, st.Username, password); err != nil {
		logw.Printf("not reusing %s: %v; building again", ref, err)
		return container.Ref{}, false
	}
	if err := s.db.WithContext(ctx).Model(&artifactRow{}).Where("fingerprint = ? AND commit_sha = ?", fingerprint, commit).
		Update("last_used_at", time.Now().UTC()).Error; err != nil {
		s.log.Warn("mark image used", "image", a.Path, "err", err)
	}
	return ref, true
}
