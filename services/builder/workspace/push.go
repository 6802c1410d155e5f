package workspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
)

// RefUpdate asks a push to set the remote's Ref (refs/heads/… or refs/tags/…) to Commit.
type RefUpdate struct {
	Commit string
	Ref    string
}

// PushRefusedError is a push git or the remote refused for one ref: not a fast-forward, a
// tag that already exists, a hook that declined. Nothing was forced.
type PushRefusedError struct {
	Ref    string
	Reason string
}

func (e *PushRefusedError) Error() string {
	return fmt.Sprintf("push to %s refused: %s", e.Ref, e.Reason)
}

// Push sends updates from gitDir (a mirror or a run repository) to the repository at url,
// authenticating like Mirror: credentials in url reach git only through its environment.
// Pushes are never forced: a remote branch that moved, or a tag that exists, is a
// *PushRefusedError, as is a rejection by the remote's hooks. git's output goes to log.
func (w *Workspace) Push(ctx context.Context, gitDir, url string, updates []RefUpdate, log io.Writer) error {
	if err := validURL(url); err != nil {
		return err
	}
	if len(updates) == 0 {
		return nil
	}
	args := []string{"--git-dir=" + gitDir, "push", "--porcelain", "--no-verify", url}
	for _, u := range updates {
		if !gitref.IsFullCommit(u.Commit) {
			return apperr.Invalid("push: invalid commit id %q", u.Commit)
		}
		if !strings.HasPrefix(u.Ref, "refs/heads/") && !strings.HasPrefix(u.Ref, "refs/tags/") {
			return apperr.Invalid("push: %q is not a refs/heads/ or refs/tags/ ref", u.Ref)
		}
		if err := gitref.Valid(u.Ref); err != nil {
			return err
		}
		args = append(args, u.Commit+":"+u.Ref) // no leading "+": never forced
	}
	rem, err := w.splitCredentials(url)
	if err != nil {
		return err
	}
	args[4] = rem.url
	if log == nil {
		log = io.Discard
	}
	var out strings.Builder
	err = w.run(ctx, gitCmd{args: args, stdout: &out, log: log, env: rem.env})
	_, _ = io.WriteString(log, out.String()) // after git ended: stderr wrote to log meanwhile
	if refused := parseRefused(out.String()); refused != nil {
		return refused
	}
	var exit *exec.ExitError
	if err != nil && errors.As(err, &exit) && ctx.Err() == nil {
		return fmt.Errorf("push to %s: %w", Redact(url), err)
	}
	return err
}

// parseRefused finds the first refused ref in `git push --porcelain` output, whose lines
// are "<flag>\t<from>:<to>\t<summary> (<reason>)" with flag "!" for a refused ref.
func parseRefused(out string) *PushRefusedError {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) < 3 || parts[0] != "!" {
			continue
		}
		_, to, _ := strings.Cut(parts[1], ":")
		return &PushRefusedError{Ref: to, Reason: parts[2]}
	}
	return nil
}
