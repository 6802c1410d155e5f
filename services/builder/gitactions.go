package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/events"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/workspace"
)

// Post-success git actions (the old tool's "tag the release, merge into master"). They are
// opt-in per project (projects.git_actions) and run by the builder, which owns the mirror
// and authenticates to the repository like its fetch does, when a run finished succeeded
// (its own consumer group on fabu.run.finished.v1). The commit acted on is the run's built
// commit; a merged build's commit, which exists only in the run's repository, is made
// again from the recorded merge (merges are reproducible) and pushed with its objects.
// Nothing is ever forced: a refused push, a tag that exists, a branch that is not a
// fast-forward or a conflicting merge is a warning on the run (run_git.actions), which
// stays succeeded, and a line in its log.

// GroupGitActions is the consumer group that runs post-success git actions.
const GroupGitActions = "builder-git"

// Merge modes of GitActions.MergeMode.
const (
	MergeModeFastForward = "ff-only" // move the branch only when the built commit is ahead
	MergeModeMerge       = "merge"   // else make a merge commit
)

// GitActions are a project's post-success actions, as stored in projects.git_actions.
type GitActions struct {
	Tag       string `json:"tag,omitempty"`        // tag name template (gitref.RenderTag)
	MergeInto string `json:"merge_into,omitempty"` // branch to merge the built commit into
	MergeMode string `json:"merge_mode,omitempty"` // MergeModeFastForward (default) or MergeModeMerge
}

// Validate checks a's tag template, branch and mode. Errors are apperr Invalid errors.
func (a GitActions) Validate() error {
	if a.Tag != "" {
		if err := gitref.ValidTagTemplate(a.Tag); err != nil {
			return err
		}
	}
	if a.MergeInto != "" {
		if err := gitref.Valid(a.MergeInto); err != nil {
			return err
		}
		if gitref.IsFullCommit(a.MergeInto) {
			return apperr.Invalid("merge_into %q must name a branch, not a commit", a.MergeInto)
		}
	}
	switch a.MergeMode {
	case "", MergeModeFastForward, MergeModeMerge:
	default:
		return apperr.Invalid("merge_mode %q: want %s or %s", a.MergeMode, MergeModeFastForward, MergeModeMerge)
	}
	return nil
}

// Outcomes of one action.
const (
	OutcomePushed   = "pushed"
	OutcomeUpToDate = "up-to-date" // the branch already contains the commit
	OutcomeWarning  = "warning"
)

// actionResult is one action's outcome, as stored in run_git.actions.
type actionResult struct {
	Action  string `json:"action"` // "tag" or "merge"
	Target  string `json:"target"` // the tag's name or the branch
	Commit  string `json:"commit,omitempty"`
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"`
}

// gitActions returns p's post-success actions, or ok false when it has none.
func (p project) gitActions() (GitActions, bool, error) {
	if p.GitActions == "" {
		return GitActions{}, false, nil
	}
	var a GitActions
	if err := json.Unmarshal([]byte(p.GitActions), &a); err != nil {
		return a, false, apperr.Invalid("project %s: git_actions is not a JSON object: %v", p.Name, err)
	}
	if err := a.Validate(); err != nil {
		return a, false, err
	}
	return a, a.Tag != "" || a.MergeInto != "", nil
}

// onFinishedGit runs the post-success git actions of a run that finished succeeded. Each
// run's actions run once: the first delivery claims the run in run_git.
func (s *Service) onFinishedGit(ctx context.Context, m bus.Message) error {
	var ev events.RunFinished
	if err := events.Decode(m, &ev); err != nil {
		return err
	}
	if ev.Status != string(runs.StatusSucceeded) {
		return nil
	}
	p, _, err := s.loadProject(ctx, ev.ProjectID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	acts, ok, err := p.gitActions()
	if err != nil {
		s.log.Warn("post-success git actions", "run", ev.RunID, "err", err)
		return nil // a stored setting the gateway would refuse: nothing to retry
	}
	if !ok {
		return nil
	}
	claimed, err := s.claimActions(ctx, ev.RunID)
	if err != nil || !claimed {
		return err
	}
	r, err := runs.Get(s.db.WithContext(ctx), ev.RunID)
	if err != nil {
		return errors.Join(err, s.unclaimActions(ev.RunID))
	}
	results, err := s.runGitActions(ctx, r, p, acts)
	if ctx.Err() != nil { // shutting down: let the redelivery run them
		return errors.Join(ctx.Err(), s.unclaimActions(ev.RunID))
	}
	if err != nil {
		results = append(results, actionResult{Action: "setup", Outcome: OutcomeWarning, Message: err.Error()})
	}
	return s.storeActions(ev.RunID, results)
}

// claimActions marks run id's actions running; false when another delivery has them.
func (s *Service) claimActions(ctx context.Context, id string) (bool, error) {
	var claimed bool
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		row := runGit{RunID: id, UpdatedAt: time.Now().UTC()}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return err
		}
		res := tx.Model(&runGit{}).Where("run_id = ? AND actions_state = ?", id, "").
			Updates(map[string]any{"actions_state": "running", "updated_at": time.Now().UTC()})
		claimed = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("claim git actions of run %s: %w", id, err)
	}
	return claimed, nil
}

func (s *Service) unclaimActions(id string) error {
	return s.db.Model(&runGit{}).Where("run_id = ? AND actions_state = ?", id, "running").
		Update("actions_state", "").Error
}

func (s *Service) storeActions(id string, results []actionResult) error {
	state := "done"
	for _, r := range results {
		if r.Outcome == OutcomeWarning {
			state = "warning"
		}
	}
	b, err := json.Marshal(results)
	if err != nil {
		return err
	}
	return s.db.Model(&runGit{}).Where("run_id = ?", id).
		Updates(map[string]any{"actions_state": state, "actions": string(b), "updated_at": time.Now().UTC()}).Error
}

// runGitActions fetches the repository, makes the built commit available in a repository
// of the run's own, and runs the tag and merge actions, logging each outcome.
func (s *Service) runGitActions(ctx context.Context, r runs.Run, p project, acts GitActions) ([]actionResult, error) {
	logw, err := runlog.NewWriter(ctx, s.db.DB, r.ID, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := logw.Close(); err != nil {
			s.log.Error("close run log", "run", r.ID, "err", err)
		}
	}()
	commit := r.CommitSHA
	logw.Printf("post-success git actions for %s: fetching %s", commit, workspace.Redact(p.GitURL))
	remote, err := s.remoteURL(p) // credentials.go
	if err != nil {
		logw.Printf("warning: git actions skipped: %v", err)
		return nil, err
	}
	p.GitURL = remote // for git only: the fetch and the pushes below; logs show URLs through Redact
	mirror, err := s.ws.Mirror(ctx, orDefault(p.Platform, "git"), orDefault(p.Namespace, "default"), p.Name, p.GitURL, logw.Stream(runlog.StreamStdout))
	if err != nil {
		logw.Printf("warning: git actions skipped: fetch repository: %v", err)
		return nil, fmt.Errorf("fetch repository: %w", err)
	}
	gitDir := filepath.Join(s.cfg.WorkspaceDir, "runs", r.ID+".actions.git")
	_ = s.ws.Cleanup(gitDir)
	defer func() {
		if err := s.ws.Cleanup(gitDir); err != nil {
			s.log.Warn("remove run repository", "run", r.ID, "err", err)
		}
	}()
	if err := s.ws.RunRepo(ctx, mirror, gitDir); err != nil {
		return nil, err
	}
	if err := s.rebuildCommit(ctx, r, mirror, gitDir); err != nil {
		logw.Printf("warning: git actions skipped: %v", err)
		return nil, err
	}
	var results []actionResult
	if acts.Tag != "" {
		res := s.tagAction(ctx, r, p, acts.Tag, gitDir, logw)
		results = append(results, res)
	}
	if acts.MergeInto != "" {
		res := s.mergeAction(ctx, r, p, acts, mirror, gitDir, logw)
		results = append(results, res)
	}
	return results, nil
}

// rebuildCommit makes sure the run's built commit is in gitDir: a commit fetched from the
// repository is there through the mirror; a merged one is merged again from run_git and
// must come out as the same commit.
func (s *Service) rebuildCommit(ctx context.Context, r runs.Run, mirror, gitDir string) error {
	if !gitref.IsFullCommit(r.CommitSHA) {
		return fmt.Errorf("run %s has no built commit", r.ID)
	}
	var row runGit
	err := s.db.WithContext(ctx).Where("run_id = ?", r.ID).Take(&row).Error
	if err != nil {
		return fmt.Errorf("load run merge: %w", err)
	}
	if row.MergedCommit != r.CommitSHA || row.MergedRefs == "" || row.MergedCommit == row.BaseCommit {
		if _, err := s.ws.Resolve(ctx, gitDir, r.CommitSHA); err != nil {
			return fmt.Errorf("built commit %s is not in the repository: %w", r.CommitSHA, err)
		}
		return nil
	}
	var refs []workspace.MergeRef
	if err := json.Unmarshal([]byte(row.MergedRefs), &refs); err != nil {
		return fmt.Errorf("run %s: recorded merge refs: %w", r.ID, err)
	}
	again, _, err := s.ws.Merge(ctx, mirror, gitDir, row.BaseCommit, refs)
	if err != nil {
		return fmt.Errorf("make the merged commit again: %w", err)
	}
	if again != r.CommitSHA {
		return fmt.Errorf("merging again gave %s, not the built commit %s", again, r.CommitSHA)
	}
	return nil
}

func (s *Service) tagAction(ctx context.Context, r runs.Run, p project, tpl, gitDir string, logw *runlog.Writer) actionResult {
	when := time.Now().UTC()
	if r.FinishedAt != nil {
		when = *r.FinishedAt
	}
	res := actionResult{Action: "tag", Commit: r.CommitSHA}
	name, err := gitref.RenderTag(tpl, gitref.TagVars{Time: when, Run: r.ID, Commit: r.CommitSHA, Project: p.Name})
	if err != nil {
		return s.warn(logw, res, fmt.Sprintf("tag: %v", err))
	}
	res.Target = name
	err = s.ws.Push(ctx, gitDir, p.GitURL, []workspace.RefUpdate{{Commit: r.CommitSHA, Ref: "refs/tags/" + name}}, logw.Stream(runlog.StreamStdout))
	if err != nil {
		return s.warn(logw, res, fmt.Sprintf("tag %s: %v", name, err))
	}
	res.Outcome = OutcomePushed
	logw.Printf("pushed tag %s at %s", name, r.CommitSHA)
	return res
}

func (s *Service) mergeAction(ctx context.Context, r runs.Run, p project, acts GitActions, mirror, gitDir string, logw *runlog.Writer) actionResult {
	branch := acts.MergeInto
	res := actionResult{Action: "merge", Target: branch}
	tip, err := s.ws.Resolve(ctx, mirror, "refs/heads/"+branch)
	if err != nil {
		return s.warn(logw, res, fmt.Sprintf("merge into %s: %v", branch, err))
	}
	msg := fmt.Sprintf("Merge %s (fabu run %s) into %s\n", r.CommitSHA[:12], r.ID, branch)
	next, how, err := s.ws.MergeCommit(ctx, gitDir, tip, r.CommitSHA, msg, acts.MergeMode != MergeModeMerge)
	var ce *workspace.ConflictError
	switch {
	case errors.Is(err, workspace.ErrNotFastForward):
		return s.warn(logw, res, fmt.Sprintf("merge into %s: %s is not a fast-forward of %s; the branch was left alone (merge_mode ff-only)", branch, r.CommitSHA[:12], tip[:12]))
	case errors.As(err, &ce):
		ce.Ref = r.CommitSHA[:12]
		return s.warn(logw, res, fmt.Sprintf("merge into %s: %v; the branch was left alone", branch, ce))
	case err != nil:
		return s.warn(logw, res, fmt.Sprintf("merge into %s: %v", branch, err))
	}
	res.Commit = next
	if how == workspace.MergeResultUpToDate {
		res.Outcome = OutcomeUpToDate
		logw.Printf("%s already contains %s", branch, r.CommitSHA)
		return res
	}
	err = s.ws.Push(ctx, gitDir, p.GitURL, []workspace.RefUpdate{{Commit: next, Ref: "refs/heads/" + branch}}, logw.Stream(runlog.StreamStdout))
	if err != nil {
		return s.warn(logw, res, fmt.Sprintf("merge into %s: %v", branch, err))
	}
	res.Outcome = OutcomePushed
	logw.Printf("merged %s into %s (%s): %s", r.CommitSHA, branch, how, next)
	return res
}

func (s *Service) warn(logw *runlog.Writer, res actionResult, msg string) actionResult {
	res.Outcome, res.Message = OutcomeWarning, msg
	logw.Printf("warning: %s", msg)
	return res
}
