package workspace

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
)

// Resolve returns the full commit id that ref names in the mirror mirrorDir. ref is tried, in
// order, as
//   - a full commit id (40 or 64 hex digits), which is always taken as a commit;
//   - a fully qualified "refs/heads/..." or "refs/tags/..." name;
//   - a branch (refs/heads/<ref>), then a tag (refs/tags/<ref>, peeled to its commit);
//   - an abbreviated commit id (7 or more hex digits), which must be unambiguous.
//
// A ref that is neither a valid ref name (ValidRef) nor a valid commit id (ValidCommit) is an
// apperr Invalid error, returned before any git process starts; one that names no commit is
// an apperr NotFound error.
func (w *Workspace) Resolve(ctx context.Context, mirrorDir, ref string) (string, error) {
	refErr := gitref.Valid(ref)
	shaErr := gitref.ValidCommit(ref)
	if refErr != nil && shaErr != nil {
		return "", refErr
	}
	var candidates []string
	switch {
	case gitref.IsFullCommit(ref):
		candidates = []string{ref}
	case strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "refs/tags/"):
		candidates = []string{ref}
	default:
		if refErr == nil {
			candidates = append(candidates, "refs/heads/"+ref, "refs/tags/"+ref)
		}
		if shaErr == nil {
			candidates = append(candidates, ref)
		}
	}
	for _, c := range candidates {
		commit, err := w.revParse(ctx, mirrorDir, c)
		if err != nil {
			return "", fmt.Errorf("resolve %q: %w", ref, err)
		}
		if commit != "" {
			return commit, nil
		}
	}
	return "", apperr.NotFound("git ref %q not found", ref)
}

// revParse returns the commit that name peels to, or "" when it names none.
func (w *Workspace) revParse(ctx context.Context, mirrorDir, name string) (string, error) {
	var out strings.Builder
	err := w.run(ctx, gitCmd{
		args:   []string{"--git-dir=" + mirrorDir, "rev-parse", "--verify", "--quiet", "--end-of-options", name + "^{commit}"},
		stdout: &out,
	})
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && ctx.Err() == nil {
		return "", nil // --verify --quiet: exit 1 means "no such object"
	}
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(out.String())
	if !gitref.IsFullCommit(commit) {
		return "", fmt.Errorf("git rev-parse printed %q, not a commit id", commit)
	}
	return commit, nil
}
