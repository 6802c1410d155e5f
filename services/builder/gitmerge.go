package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm/clause"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/pipeline"
	"fabu.dev/services/builder/workspace"
)

// Merging before a build (the old tool's "temporary branch"): a project, or the .fabu.yml
// of the run's commit, lists refs to merge into that commit; the builder merges them in
// the run's own repository (workspace.RunRepo, which borrows the mirror's objects and never
// writes the mirror), checks out the result and builds it. The merged commit is what the
// run records, builds, reuses artifacts by, and deploys. A conflict fails the run at once,
// naming the files.

// runGit is a run's row in run_git: what it merged and what its post-success actions did.
type runGit struct {
	RunID        string `gorm:"primaryKey"`
	BaseCommit   string
	MergedCommit string
	MergedRefs   string // JSON []workspace.MergeRef
	ActionsState string // "", running, done, warning
	Actions      string // JSON []actionResult
	UpdatedAt    time.Time
}

func (runGit) TableName() string { return "run_git" }

// projectMergeRefs returns the project's merge refs (a JSON array, "" for none).
func (p project) projectMergeRefs() ([]string, error) {
	if p.MergeRefs == "" {
		return nil, nil
	}
	var refs []string
	if err := json.Unmarshal([]byte(p.MergeRefs), &refs); err != nil {
		return nil, apperr.Invalid("project %s: merge_refs is not a JSON list of refs: %v", p.Name, err)
	}
	if err := pipeline.CheckMergeRefs(refs); err != nil {
		return nil, apperr.Invalid("project %s: merge_refs: %v", p.Name, err)
	}
	return refs, nil
}

// mergeRefs merges the refs the run's pipeline or project lists into commit, which is
// checked out at work, and leaves the merged commit checked out there instead. It returns
// the commit to build: commit itself when there is nothing to merge.
func (s *Service) mergeRefs(ctx context.Context, r runs.Run, p project, settings pipeline.ProjectSettings, mirror, commit, work string, logw *runlog.Writer) (string, error) {
	projectRefs, err := p.projectMergeRefs()
	if err != nil {
		return "", err
	}
	names, err := pipeline.MergeRefs(work, settings, projectRefs)
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return commit, nil
	}
	logw.Printf("merging %d ref(s) into %s before building: %s", len(names), commit, strings.Join(names, ", "))
	refs := make([]workspace.MergeRef, len(names))
	for i, n := range names {
		refs[i] = workspace.MergeRef{Ref: n}
	}
	gitDir := filepath.Join(s.cfg.WorkspaceDir, "runs", r.ID+".git")
	_ = s.ws.Cleanup(gitDir) // left by a builder that stopped mid-merge
	defer func() {
		if err := s.ws.Cleanup(gitDir); err != nil {
			s.log.Warn("remove run repository", "run", r.ID, "err", err)
		}
	}()
	if err := s.ws.RunRepo(ctx, mirror, gitDir); err != nil {
		return "", fmt.Errorf("merge: %w", err)
	}
	merged, done, err := s.ws.Merge(ctx, mirror, gitDir, commit, refs)
	var ce *workspace.ConflictError
	if errors.As(err, &ce) {
		return "", apperr.Conflict("merge conflict: %v", ce)
	}
	if err != nil {
		return "", fmt.Errorf("merge: %w", err)
	}
	for _, d := range done {
		logw.Printf("merge %s (%s): %s", d.Ref, d.Commit, d.Result)
	}
	if err := s.recordMerge(ctx, r.ID, commit, merged, done); err != nil {
		return "", err
	}
	if merged == commit {
		logw.Printf("every merge ref is already in %s; building it unchanged", commit)
		return commit, nil
	}
	if err := s.ws.Cleanup(work); err != nil {
		return "", err
	}
	if err := s.ws.Checkout(ctx, gitDir, merged, work); err != nil {
		return "", fmt.Errorf("check out merged commit %s: %w", merged, err)
	}
	logw.Printf("building merged commit %s (%s + %s)", merged, commit, strings.Join(names, " + "))
	return merged, nil
}

// recordMerge stores what run id merged in run_git.
func (s *Service) recordMerge(ctx context.Context, id, base, merged string, refs []workspace.MergeRef) error {
	b, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	row := runGit{RunID: id, BaseCommit: base, MergedCommit: merged, MergedRefs: string(b), UpdatedAt: time.Now().UTC()}
	err = s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "run_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"base_commit", "merged_commit", "merged_refs", "updated_at"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("record merge: %w", err)
	}
	return nil
}
