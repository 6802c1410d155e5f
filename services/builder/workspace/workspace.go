// Package workspace keeps the builder's cached git repositories and materialises exact
// commits for builds.
//
// The layout under Base is <platform>/<namespace>/<project>/mirror.git: one bare mirror per
// repository, fetched incrementally and shared by every run of that repository, with
// mirror.lock beside it so that only one process fetches a mirror at a time. A run resolves
// its ref to a full commit id and checks that commit out into a directory of its own.
//
// Every value that reaches git comes from data (refs, URLs, names), so everything is
// validated in Go before a process starts, passed as argv (never through a shell) after
// "--" or "--end-of-options", and git runs with a fixed environment in its own process
// group, which cancellation kills as a whole.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Workspace is a directory of cached git mirrors. The zero value is not usable: Base must be
// set. A Workspace is safe for concurrent use, also by several processes sharing Base.
type Workspace struct {
	// Base is the root directory of the layout.
	Base string
	// Git is the git binary to run; "git" (looked up in PATH) when empty.
	Git string
	// Env holds extra environment entries for git, such as GIT_SSH_COMMAND for a deploy
	// key. Nothing else of the builder's environment except PATH reaches git.
	Env []string
}

// lockPoll is how often a waiting Mirror retries the mirror's file lock.
const lockPoll = 50 * time.Millisecond

// Dir returns the directory of the repository platform/namespace/project, which holds its
// mirror.git and mirror.lock. The names are validated: each platform, namespace component
// and project must match [A-Za-z0-9._-]+, must not be "." or "..", and must not end in
// ".git" or ".lock"; a platform must start with a letter or digit.
func (w *Workspace) Dir(platform, namespace, project string) (string, error) {
	if err := validPlatform(platform); err != nil {
		return "", err
	}
	if err := validNamespace(namespace); err != nil {
		return "", err
	}
	if err := validName("project", project); err != nil {
		return "", err
	}
	if w.Base == "" {
		return "", errors.New("workspace: Base is not set")
	}
	return filepath.Join(w.Base, platform, filepath.FromSlash(namespace), project), nil
}

// Mirror makes the bare mirror of url for platform/namespace/project current and returns its
// directory (<Base>/<platform>/<namespace>/<project>/mirror.git). The first call clones with
// `git clone --mirror` into a temporary directory that is renamed into place only when
// complete; later calls fetch incrementally with `git remote update --prune`, after pointing
// the mirror's origin at url in case the project's URL changed. Credentials in url never
// reach git's argv or the mirror's config (see credentials.go). A file lock held for the
// whole call keeps two fetches of one mirror apart, in this process and in others; waiting
// for it ends with ctx. git's output goes to log (which may be nil).
func (w *Workspace) Mirror(ctx context.Context, platform, namespace, project, url string, log io.Writer) (string, error) {
	dir, err := w.Dir(platform, namespace, project)
	if err != nil {
		return "", err
	}
	if err := validURL(url); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create repository directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "mirror.lock"))
	if err != nil {
		return "", fmt.Errorf("lock mirror %s/%s/%s: %w", platform, namespace, project, err)
	}
	defer unlock()

	rem, err := w.splitCredentials(url)
	if err != nil {
		return "", err
	}
	mirror := filepath.Join(dir, "mirror.git")
	_, err = os.Stat(filepath.Join(mirror, "HEAD"))
	switch {
	case err == nil:
		err = w.update(ctx, mirror, rem, log)
	case errors.Is(err, fs.ErrNotExist):
		err = w.clone(ctx, dir, mirror, rem, log)
	default:
		err = fmt.Errorf("inspect mirror: %w", err)
	}
	if err != nil {
		return "", err
	}
	if err := exactArchives(mirror); err != nil {
		return "", err
	}
	return mirror, nil
}

// exactAttributes is the mirror's info/attributes, which outranks every .gitattributes in
// the repository: `git archive` then neither drops export-ignore files nor rewrites
// export-subst ones, so a checkout holds exactly the commit's files.
const exactAttributes = "* -export-ignore -export-subst\n"

func exactArchives(mirror string) error {
	p := filepath.Join(mirror, "info", "attributes")
	if b, err := os.ReadFile(p); err == nil && string(b) == exactAttributes {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create mirror info directory: %w", err)
	}
	if err := os.WriteFile(p, []byte(exactAttributes), 0o644); err != nil {
		return fmt.Errorf("write mirror attributes: %w", err)
	}
	return nil
}

func (w *Workspace) clone(ctx context.Context, dir, mirror string, rem remote, log io.Writer) error {
	tmp, err := os.MkdirTemp(dir, ".clone-*")
	if err != nil {
		return fmt.Errorf("create clone directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	target := filepath.Join(tmp, "mirror.git")
	err = w.run(ctx, gitCmd{args: []string{"clone", "--mirror", "--no-hardlinks", "--", rem.url, target}, log: log, env: rem.env})
	if err != nil {
		return fmt.Errorf("clone mirror: %w", err)
	}
	if err := os.Rename(target, mirror); err != nil {
		return fmt.Errorf("move clone into place: %w", err)
	}
	return nil
}

func (w *Workspace) update(ctx context.Context, mirror string, rem remote, log io.Writer) error {
	gitDir := "--git-dir=" + mirror
	var current strings.Builder
	err := w.run(ctx, gitCmd{args: []string{gitDir, "config", "--get", "remote.origin.url"}, stdout: &current, log: log})
	if err != nil {
		return fmt.Errorf("read mirror URL: %w", err)
	}
	if strings.TrimSuffix(current.String(), "\n") != rem.url {
		err := w.run(ctx, gitCmd{args: []string{gitDir, "config", "--", "remote.origin.url", rem.url}, log: log})
		if err != nil {
			return fmt.Errorf("set mirror URL: %w", err)
		}
	}
	if err := w.run(ctx, gitCmd{args: []string{gitDir, "remote", "update", "--prune"}, log: log, env: rem.env}); err != nil {
		return fmt.Errorf("fetch mirror: %w", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so that waiting ends with ctx. flock
// locks belong to the open file, so two goroutines of one process exclude each other too,
// and a crashed holder's lock goes away with its process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("flock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}
