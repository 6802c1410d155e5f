package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/artifact"
	"fabu.dev/services/builder/pipeline"
)

// Build once, deploy many: a successful build records its artifact under the plan's
// fingerprint and the commit. A later run of the same commit whose plan has the same
// fingerprint — the same recipe, commands, environment and artifact spec, whatever the
// environment it deploys to — skips the stages and ships a copy of that artifact, once its
// sha256 has been checked again. Each run still gets its own file
// (<artifact dir>/<run id>.tar.gz, a hard link when possible), so removing one run's
// artifact never takes another run's away.

// artifactRow is one row of the artifacts table.
type artifactRow struct {
	Fingerprint string `gorm:"primaryKey"`
	CommitSHA   string `gorm:"primaryKey;column:commit_sha"`
	Path        string
	SHA256      string `gorm:"column:sha256"`
	Size        int64
	Kind        string
	CreatedAt   time.Time
	LastUsedAt  time.Time
}

func (artifactRow) TableName() string { return "artifacts" }

// reuse looks for the artifact of fingerprint and commit and, when its file is intact,
// gives dest the same content. It reports false when there is nothing to reuse.
func (s *Service) reuse(ctx context.Context, fingerprint, commit, dest string) (artifact.Manifest, bool, error) {
	var a artifactRow
	err := s.db.WithContext(ctx).Where("fingerprint = ? AND commit_sha = ?", fingerprint, commit).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return artifact.Manifest{}, false, nil
	}
	if err != nil {
		return artifact.Manifest{}, false, fmt.Errorf("look up built artifacts: %w", err)
	}
	sum, err := artifact.SHA256File(a.Path)
	if err != nil || sum != a.SHA256 {
		// Gone or changed: build again, and the new build replaces the record.
		return artifact.Manifest{}, false, nil
	}
	if a.Path != dest {
		if err := linkOrCopy(a.Path, dest); err != nil {
			return artifact.Manifest{}, false, fmt.Errorf("reuse artifact %s: %w", a.Path, err)
		}
	}
	if got, err := artifact.SHA256File(dest); err != nil || got != a.SHA256 {
		_ = os.Remove(dest)
		return artifact.Manifest{}, false, fmt.Errorf("reuse artifact %s: copy does not match its sha256", a.Path)
	}
	if err := s.db.WithContext(ctx).Model(&artifactRow{}).Where("fingerprint = ? AND commit_sha = ?", fingerprint, commit).
		Update("last_used_at", time.Now().UTC()).Error; err != nil {
		s.log.Warn("mark artifact used", "path", a.Path, "err", err)
	}
	return artifact.Manifest{SHA256: a.SHA256, Size: a.Size}, true, nil
}

// recordArtifact remembers the artifact a successful build of commit made under
// fingerprint; a newer build of the same pair replaces the record.
func (s *Service) recordArtifact(ctx context.Context, fingerprint, commit, kind, path string, m artifact.Manifest) error {
	now := time.Now().UTC()
	row := artifactRow{Fingerprint: fingerprint, CommitSHA: commit, Path: path, SHA256: m.SHA256, Size: m.Size,
		Kind: kind, CreatedAt: now, LastUsedAt: now}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "fingerprint"}, {Name: "commit_sha"}},
		DoUpdates: clause.AssignmentColumns([]string{"path", "sha256", "size", "kind", "created_at", "last_used_at"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("record artifact: %w", err)
	}
	return nil
}

// packArtifact packages what the stages left in the checkout at root as the tar.gz dest:
// a directory's tree without pipeline files (.fabu.yml), or a single file (a jar, a war) as the one entry of the archive, so
// the deployer unpacks every kind the same way and releases/<id>/ holds the jar or war.
func packArtifact(ctx context.Context, spec pipeline.ArtifactSpec, root, scratch, dest string) (artifact.Manifest, error) {
	src, err := spec.Resolve(root)
	if err != nil {
		return artifact.Manifest{}, err
	}
	if spec.Kind == pipeline.KindDir {
		// A pipeline file says how the release is built and is no part of it: a static
		// site's source dir, which holds one, would publish it.
		return artifact.PackWithout(ctx, src, dest, pipeline.FileName)
	}
	if err := os.MkdirAll(scratch, 0o750); err != nil {
		return artifact.Manifest{}, err
	}
	defer func() { _ = os.RemoveAll(scratch) }()
	if err := linkOrCopy(src, filepath.Join(scratch, filepath.Base(src))); err != nil {
		return artifact.Manifest{}, fmt.Errorf("stage artifact %s: %w", filepath.Base(src), err)
	}
	return artifact.Pack(ctx, scratch, dest)
}

// linkOrCopy makes dest a hard link of src, or a copy where links cannot be made (another
// file system). dest is replaced if it exists.
func linkOrCopy(src, dest string) error {
	_ = os.Remove(dest)
	if err := os.Link(src, dest); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dest + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dest)
}
