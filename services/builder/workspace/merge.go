package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
)

// Merging before a build. A run that merges other refs into its commit does so in a git
// directory of its own (RunRepo): a bare repository that borrows the mirror's objects
// through objects/info/alternates and writes the merge's trees and commits into itself, so
// the shared mirror is never written by a run and two runs never see each other's merges.
// Merges use `git merge-tree --write-tree` (no index, no working tree) and `git
// commit-tree` with a fixed identity and a date taken from the parents, so merging the
// same commits gives the same commit id on any builder: build-once reuse keys on the merged
// commit, and the post-success actions can make the built commit again to push it.

// Identity of the merge commits fabu makes.
const (
	MergeName  = "fabu"
	MergeEmail = "fabu@localhost"
)

// How a ref went into a merge.
const (
	MergeResultMerged      = "merged"       // a merge commit was made
	MergeResultFastForward = "fast-forward" // the ref was ahead: it is the new result
	MergeResultUpToDate    = "up-to-date"   // the ref was already contained
)

// MergeRef is one ref merged into a commit: its name, the commit it named, and how it
// went in.
type MergeRef struct {
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
	Result string `json:"result,omitempty"`
}

// ConflictError is a merge that conflicts; Files are the conflicting paths.
type ConflictError struct {
	Ref   string
	Files []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("merging %s conflicts in %d file(s): %s", e.Ref, len(e.Files), strings.Join(e.Files, ", "))
}

// ErrNotFastForward is a fast-forward-only merge of a commit that is not ahead.
var ErrNotFastForward = errors.New("not a fast-forward")

// RunRepo makes dir a run's own bare git directory whose objects come from the mirror at
// mirrorDir (read-only, through alternates). dir must not exist. Checkout, Merge and Push
// accept it in place of the mirror. Remove it with Cleanup.
func (w *Workspace) RunRepo(ctx context.Context, mirrorDir, dir string) error {
	if !filepath.IsAbs(dir) || !filepath.IsAbs(mirrorDir) {
		return fmt.Errorf("run repository %q and mirror %q must be absolute paths", dir, mirrorDir)
	}
	if _, err := os.Lstat(dir); err == nil {
		return apperr.Conflict("run repository %s already exists", dir)
	}
	var format strings.Builder
	err := w.run(ctx, gitCmd{args: []string{"--git-dir=" + mirrorDir, "rev-parse", "--show-object-format"}, stdout: &format})
	if err != nil {
		return fmt.Errorf("read mirror object format: %w", err)
	}
	of := strings.TrimSpace(format.String())
	if of != "sha1" && of != "sha256" {
		return fmt.Errorf("mirror object format %q is not sha1 or sha256", of)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create run repository parent: %w", err)
	}
	if err := w.run(ctx, gitCmd{args: []string{"init", "--quiet", "--bare", "--object-format=" + of, dir}}); err != nil {
		_ = w.Cleanup(dir)
		return fmt.Errorf("create run repository: %w", err)
	}
	files := map[string]string{
		filepath.Join(dir, "objects", "info", "alternates"): filepath.Join(mirrorDir, "objects") + "\n",
		filepath.Join(dir, "info", "attributes"):            exactAttributes,
	}
	for p, content := range files {
		err := os.MkdirAll(filepath.Dir(p), 0o755)
		if err == nil {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			_ = w.Cleanup(dir)
			return fmt.Errorf("set up run repository: %w", err)
		}
	}
	return nil
}

// Merge merges refs, one after another, into base (a full commit id) in the run repository
// gitDir (see RunRepo) and returns the resulting commit and each ref with the commit it
// named and how it went in. A ref without a commit is resolved in the mirror mirrorDir
// (Resolve's rules); one with a commit (a recorded merge being made again) is checked to
// exist. A ref already contained is skipped, one strictly ahead is fast-forwarded to, and
// anything else gets a merge commit. A conflict stops at once with a *ConflictError naming
// the files; a ref that does not exist is an apperr NotFound error and a malformed one an
// Invalid error, returned before any git process sees it.
func (w *Workspace) Merge(ctx context.Context, mirrorDir, gitDir, base string, refs []MergeRef) (string, []MergeRef, error) {
	if !gitref.IsFullCommit(base) {
		return "", nil, apperr.Invalid("invalid base commit %q: want a full commit id", base)
	}
	for _, r := range refs {
		if err := validMergeRef(r); err != nil {
			return "", nil, err
		}
	}
	current := base
	done := make([]MergeRef, 0, len(refs))
	for _, r := range refs {
		if r.Commit == "" {
			c, err := w.Resolve(ctx, mirrorDir, r.Ref)
			if apperr.Is(err, apperr.CodeNotFound) {
				return "", nil, apperr.NotFound("merge ref %q not found in the repository", r.Ref)
			}
			if err != nil {
				return "", nil, fmt.Errorf("merge ref %q: %w", r.Ref, err)
			}
			r.Commit = c
		} else if ok, err := w.hasCommit(ctx, gitDir, r.Commit); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, apperr.NotFound("merge ref %q: commit %s is not in the repository", r.Ref, r.Commit)
		}
		msg := fmt.Sprintf("Merge %s (%s) into %s\n\nMade by fabu before building.\n", r.Ref, r.Commit[:12], current[:12])
		next, how, err := w.MergeCommit(ctx, gitDir, current, r.Commit, msg, false)
		var ce *ConflictError
		if errors.As(err, &ce) {
			ce.Ref = r.Ref
			return "", nil, ce
		}
		if err != nil {
			return "", nil, fmt.Errorf("merge %s: %w", r.Ref, err)
		}
		r.Result = how
		current = next
		done = append(done, r)
	}
	return current, done, nil
}

func validMergeRef(r MergeRef) error {
	if err := gitref.Valid(r.Ref); err != nil && gitref.ValidCommit(r.Ref) != nil {
		return fmt.Errorf("merge ref: %w", err)
	}
	if r.Commit != "" && !gitref.IsFullCommit(r.Commit) {
		return apperr.Invalid("merge ref %q: invalid commit id %q", r.Ref, r.Commit)
	}
	return nil
}

// MergeCommit merges commit into into (both full commit ids) in gitDir and returns the
// result and how it was reached (MergeResult…). With ffOnly, anything but an up-to-date
// or fast-forward result is ErrNotFastForward. A conflict is a *ConflictError naming the
// files (Ref empty). The merge commit has into and commit as parents, fabu's identity,
// message msg, and the later of the parents' committer dates, so it is reproducible.
func (w *Workspace) MergeCommit(ctx context.Context, gitDir, into, commit, msg string, ffOnly bool) (string, string, error) {
	if !gitref.IsFullCommit(into) || !gitref.IsFullCommit(commit) {
		return "", "", apperr.Invalid("merge %q into %q: want full commit ids", commit, into)
	}
	if into == commit {
		return into, MergeResultUpToDate, nil
	}
	if ok, err := w.isAncestor(ctx, gitDir, commit, into); err != nil || ok {
		return into, MergeResultUpToDate, err
	}
	if ok, err := w.isAncestor(ctx, gitDir, into, commit); err != nil || ok {
		return commit, MergeResultFastForward, err
	}
	if ffOnly {
		return "", "", ErrNotFastForward
	}
	tree, err := w.mergeTree(ctx, gitDir, into, commit)
	if err != nil {
		return "", "", err
	}
	when := int64(0)
	for _, c := range []string{into, commit} {
		t, err := w.commitTime(ctx, gitDir, c)
		if err != nil {
			return "", "", err
		}
		when = max(when, t)
	}
	date := strconv.FormatInt(when, 10) + " +0000"
	var out strings.Builder
	err = w.run(ctx, gitCmd{
		args:   []string{"--git-dir=" + gitDir, "commit-tree", "-p", into, "-p", commit, "-m", msg, "--end-of-options", tree},
		stdout: &out,
		env: []string{"GIT_AUTHOR_NAME=" + MergeName, "GIT_AUTHOR_EMAIL=" + MergeEmail, "GIT_AUTHOR_DATE=" + date,
			"GIT_COMMITTER_NAME=" + MergeName, "GIT_COMMITTER_EMAIL=" + MergeEmail, "GIT_COMMITTER_DATE=" + date},
	})
	if err != nil {
		return "", "", err
	}
	merged := strings.TrimSpace(out.String())
	if !gitref.IsFullCommit(merged) {
		return "", "", fmt.Errorf("git commit-tree printed %q, not a commit id", merged)
	}
	return merged, MergeResultMerged, nil
}

// mergeTree writes the merged tree of a and b into gitDir and returns its id, or a
// *ConflictError listing the conflicting files.
func (w *Workspace) mergeTree(ctx context.Context, gitDir, a, b string) (string, error) {
	var out bytes.Buffer
	err := w.run(ctx, gitCmd{
		args:   []string{"--git-dir=" + gitDir, "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", a, b},
		stdout: &out,
	})
	fields := strings.Split(strings.TrimRight(out.String(), "\x00"), "\x00")
	var exit *exec.ExitError
	switch {
	case err == nil:
		if len(fields) == 0 || !gitref.IsFullCommit(fields[0]) {
			return "", fmt.Errorf("git merge-tree printed %q, not a tree id", out.String())
		}
		return fields[0], nil
	case errors.As(err, &exit) && exit.ExitCode() == 1 && ctx.Err() == nil:
		var files []string
		seen := map[string]bool{}
		for _, f := range fields[1:] {
			if f != "" && !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
		return "", &ConflictError{Files: files}
	}
	return "", err
}

// isAncestor reports whether a is an ancestor of (or equal to) b.
func (w *Workspace) isAncestor(ctx context.Context, gitDir, a, b string) (bool, error) {
	err := w.run(ctx, gitCmd{args: []string{"--git-dir=" + gitDir, "merge-base", "--is-ancestor", a, b}})
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && ctx.Err() == nil {
		return false, nil
	}
	return err == nil, err
}

// hasCommit reports whether commit exists in gitDir (or the mirror it borrows from).
func (w *Workspace) hasCommit(ctx context.Context, gitDir, commit string) (bool, error) {
	c, err := w.revParse(ctx, gitDir, commit)
	return c == commit, err
}

// commitTime returns commit's committer date in Unix seconds.
func (w *Workspace) commitTime(ctx context.Context, gitDir, commit string) (int64, error) {
	var out strings.Builder
	err := w.run(ctx, gitCmd{args: []string{"--git-dir=" + gitDir, "show", "-s", "--format=%ct", "--end-of-options", commit}, stdout: &out})
	if err != nil {
		return 0, err
	}
	t, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("commit time of %s: %w", commit, err)
	}
	return t, nil
}
