package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
)

// The artifact store across machines. The builder keeps artifacts in its artifact
// directory (an artifact.Dir store) and serves them at GET /internal/artifacts/<name> to
// holders of a URL it signed: HMAC-SHA256 over the name and an expiry, under a key derived
// from the master keys. handOff puts such a URL, valid for ArtifactConfig.URLTTL, in every
// RunBuilt, so a deployer on another machine fetches the artifact, verifies its sha256 and
// ships it. There is no unsigned download.
//
// Retention deletes artifacts older than ArtifactConfig.Retention, except the artifact of
// each project's latest succeeded run (what `current` runs, and what a rollback or
// re-deploy needs), of runs still in flight, and of runs created within the retention
// period (a reused artifact is a hard link that keeps the old file's time).

// ArtifactConfig configures serving and retention of the builder's artifacts.
type ArtifactConfig struct {
	// BaseURL is where deployers reach this builder's HTTP listener, e.g.
	// http://builder-1:8080; without it RunBuilt carries no URL and deployers must share
	// the artifact directory.
	BaseURL string
	// Keys sign artifact URLs, newest first: secret.Keyring.Derive(artifact.SigningPurpose),
	// the same in every builder process. Without keys nothing is served.
	Keys           [][]byte
	URLTTL         time.Duration // lifetime of a signed URL; default 1h
	Retention      time.Duration // age after which artifacts go; default 30 days; negative: never
	RetentionEvery time.Duration // how often retention runs; default 12h
}

// DefaultRetention is how long artifacts are kept by default.
const DefaultRetention = 30 * 24 * time.Hour

func (c *ArtifactConfig) validate() error {
	if c.URLTTL == 0 {
		c.URLTTL = time.Hour
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.RetentionEvery == 0 {
		c.RetentionEvery = 12 * time.Hour
	}
	if c.URLTTL < 0 || c.RetentionEvery < 0 {
		return errors.New("builder: artifact URL lifetime and retention interval must be positive")
	}
	if c.BaseURL != "" {
		sg, err := artifact.NewSigner(c.Keys...)
		if err != nil {
			return fmt.Errorf("builder: artifact URLs need signing keys: %w", err)
		}
		// Check the base URL once, here, rather than at every handOff.
		if _, err := sg.URL(c.BaseURL, "check.tar.gz", time.Minute); err != nil {
			return fmt.Errorf("builder: %w", err)
		}
	}
	return nil
}

// Artifacts serves a builder's artifacts and applies their retention.
type Artifacts struct {
	cfg    ArtifactConfig
	store  *artifact.Dir
	signer *artifact.Signer // nil without keys: every request is refused
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time
}

// ServeArtifacts attaches artifact serving and retention to s. From then on handOff puts a
// signed URL in every RunBuilt. The caller mounts Handler at GET
// artifact.RoutePrefix+":name" on the process's HTTP engine and runs Run beside s.Run.
func (s *Service) ServeArtifacts(cfg ArtifactConfig) (*Artifacts, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	st, err := artifact.NewDir(s.cfg.ArtifactDir)
	if err != nil {
		return nil, err
	}
	a := &Artifacts{cfg: cfg, store: st, db: s.db, log: s.log, now: time.Now}
	if len(cfg.Keys) > 0 {
		if a.signer, err = artifact.NewSigner(cfg.Keys...); err != nil {
			return nil, fmt.Errorf("builder: %w", err)
		}
	}
	s.artifacts.Store(a)
	return a, nil
}

// artifactURL returns the signed URL of the artifact at path, or "" when s serves no
// artifacts or path is not in its store.
func (s *Service) artifactURL(path string) string {
	a := s.artifacts.Load()
	if a == nil || a.signer == nil || a.cfg.BaseURL == "" {
		return ""
	}
	name := artifact.NameOf(path)
	if name == "" || filepath.Clean(path) != filepath.Join(s.cfg.ArtifactDir, name) {
		s.log.Warn("artifact outside the artifact store; no URL for it", "path", path)
		return ""
	}
	u, err := a.signer.URL(a.cfg.BaseURL, name, a.cfg.URLTTL)
	if err != nil {
		s.log.Error("sign artifact URL", "name", name, "err", err)
		return ""
	}
	return u
}

// Handler serves the store to signed URLs.
func (a *Artifacts) Handler() http.Handler {
	return artifact.Handler(a.store, a.signer, a.log)
}

// Checks returns no checks: serving needs nothing the builder does not check already.
func (a *Artifacts) Checks() []httpx.Check { return nil }

// Run applies retention now and then every RetentionEvery until ctx ends.
func (a *Artifacts) Run(ctx context.Context) error {
	if a.cfg.Retention < 0 {
		return nil
	}
	t := time.NewTicker(a.cfg.RetentionEvery)
	defer t.Stop()
	for {
		deleted, err := a.Prune(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Error("artifact retention", "err", err)
		}
		if len(deleted) > 0 {
			a.log.Info("artifact retention deleted old artifacts", "count", len(deleted), "older_than", a.cfg.Retention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Prune deletes the artifacts older than the retention period that no run still needs, and
// returns their names.
func (a *Artifacts) Prune(ctx context.Context) ([]string, error) {
	if a.cfg.Retention < 0 {
		return nil, nil
	}
	cutoff := a.now().Add(-a.cfg.Retention)
	all, err := a.store.List(ctx)
	if err != nil {
		return nil, err
	}
	var old, bases []string
	seen := map[string]bool{}
	for _, f := range all {
		if f.ModTime.Before(cutoff) {
			old = append(old, f.Name)
			// A manifest goes or stays with its artifact.
			if base := strings.TrimSuffix(f.Name, artifact.ManifestSuffix); !seen[base] {
				seen[base] = true
				bases = append(bases, base)
			}
		}
	}
	if len(old) == 0 {
		return nil, nil
	}
	keep, err := a.needed(ctx, bases, cutoff)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, name := range old {
		if keep[strings.TrimSuffix(name, artifact.ManifestSuffix)] {
			continue
		}
		if err := a.store.Delete(ctx, name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}

// retentionRun is what retention reads of a run.
type retentionRun struct {
	ID           string
	ProjectID    string
	Status       runs.Status
	ArtifactPath string
	CreatedAt    time.Time
}

// needed returns which of the artifacts names some run still needs: the latest succeeded
// run of a project, a run in flight, or a run created after cutoff.
func (a *Artifacts) needed(ctx context.Context, names []string, cutoff time.Time) (map[string]bool, error) {
	keep := map[string]bool{}
	db := a.db.WithContext(ctx)
	projects := map[string]bool{}
	const chunk = 400
	for i := 0; i < len(names); i += chunk {
		part := names[i:min(i+chunk, len(names))]
		paths := make([]string, 0, len(part))
		ids := make([]string, 0, len(part))
		for _, n := range part {
			p, _ := a.store.Path(n) // names come from List: valid
			paths = append(paths, p)
			ids = append(ids, runIDOf(n))
		}
		var rows []retentionRun
		err := db.Model(&runs.Run{}).Select("id, project_id, status, artifact_path, created_at").
			Where("artifact_path IN ? OR id IN ?", paths, ids).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("artifact retention: read runs: %w", err)
		}
		for _, r := range rows {
			name := artifact.NameOf(r.ArtifactPath)
			if r.ArtifactPath == "" {
				name = r.ID + ".tar.gz"
			}
			switch r.Status {
			case runs.StatusRequested, runs.StatusQueued, runs.StatusBuilding, runs.StatusDeploying:
				keep[name] = true
			}
			if r.CreatedAt.After(cutoff) {
				keep[name] = true
			}
			if r.Status == runs.StatusSucceeded {
				projects[r.ProjectID] = true
			}
		}
	}
	// Only the projects of the old artifacts can have their latest success among them.
	for p := range projects {
		var latest []retentionRun
		err := db.Model(&runs.Run{}).Select("id, project_id, status, artifact_path, created_at").
			Where("project_id = ? AND status = ? AND artifact_path <> ''", p, runs.StatusSucceeded).
			Order("finished_at DESC, id DESC").Limit(1).Scan(&latest).Error
		if err != nil {
			return nil, fmt.Errorf("artifact retention: latest run of project %s: %w", p, err)
		}
		if len(latest) == 1 {
			keep[artifact.NameOf(latest[0].ArtifactPath)] = true
		}
	}
	return keep, nil
}

// runIDOf is the run ID an artifact name carries: <run id>.tar.gz, or <run id>.<ext>.
func runIDOf(name string) string {
	id, _, _ := strings.Cut(name, ".")
	return id
}

// Manifests. Every artifact gets a manifest (artifact.BuildManifest): the run, project,
// commit, ref, recipe and plan fingerprint, build time, builder version, the archive's size
// and sha256 and every file in it with its size and sha256. It is stored beside the
// artifact as <artifact>.manifest.json — served at a signed URL like the artifact, kept and
// pruned with it — and in runs.artifact_manifest for the API. RunBuilt carries its sha256,
// so the deployer can tell a tampered manifest from a tampered artifact.

// manifestInput is what a run's manifest is made of.
type manifestInput struct {
	run         runs.Run
	projectName string
	commit      string
	recipe      string
	kind        string // pipeline artifact kind: dir or file
	fingerprint string
	dest        string // the artifact file
	packed      artifact.Manifest
	reusedFrom  string // run ID whose artifact was reused; "" when built
}

// writeManifest stores the manifest of in's artifact beside it and on the run, and returns
// the manifest's sha256. A reused artifact's file list is read back from the archive.
func (s *Service) writeManifest(ctx context.Context, in manifestInput) (string, error) {
	files := in.packed.Entries
	if files == nil {
		f, err := os.Open(in.dest)
		if err != nil {
			return "", fmt.Errorf("manifest: %w", err)
		}
		files, err = artifact.ListArchive(ctx, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("manifest: list %s: %w", filepath.Base(in.dest), err)
		}
	}
	m := artifact.BuildManifest{
		Format: artifact.ManifestFormat, RunID: in.run.ID,
		Project: artifact.ManifestProject{ID: in.run.ProjectID, Name: in.projectName},
		Commit:  in.commit, Ref: in.run.Ref, Recipe: in.recipe, Fingerprint: in.fingerprint, Kind: in.kind,
		BuiltAt: time.Now().UTC().Truncate(time.Second), BuilderVersion: orDefault(s.cfg.Version, "dev"),
		ReusedFrom: in.reusedFrom,
		Artifact:   artifact.ArchiveInfo{Name: filepath.Base(in.dest), Format: "tar.gz", Size: in.packed.Size, SHA256: in.packed.SHA256},
	}
	m.SetFiles(files)
	data, err := m.Encode()
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	st, err := artifact.NewDir(filepath.Dir(in.dest))
	if err != nil {
		return "", err
	}
	name := artifact.ManifestName(filepath.Base(in.dest))
	// A run handed back to the queue and built again replaces its own manifest.
	if err := st.Delete(ctx, name); err != nil {
		return "", err
	}
	sum, _, err := st.Put(ctx, name, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("store manifest: %w", err)
	}
	if err := s.db.WithContext(ctx).Model(&runs.Run{}).Where("id = ?", in.run.ID).
		Update("artifact_manifest", string(data)).Error; err != nil {
		return "", fmt.Errorf("record manifest: %w", err)
	}
	return sum, nil
}

// artifactOrigin returns the run that built the artifact recorded for fingerprint and
// commit, for the manifest of a run that reuses it; "" when unknown.
func (s *Service) artifactOrigin(ctx context.Context, fingerprint, commit string) string {
	var paths []string
	err := s.db.WithContext(ctx).Model(&artifactRow{}).Where("fingerprint = ? AND commit_sha = ?", fingerprint, commit).
		Limit(1).Pluck("path", &paths).Error
	if err != nil || len(paths) == 0 {
		return ""
	}
	return runIDOf(artifact.NameOf(paths[0]))
}
