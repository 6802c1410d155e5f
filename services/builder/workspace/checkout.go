package workspace

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
)

// Checkout writes the tree of commit, a full commit id as returned by Resolve, from the
// mirror mirrorDir into dest, which must not exist yet; its parent is created if needed. On
// failure dest is removed again. Cancelling ctx kills git.
//
// The tree comes from `git archive <commit>` read through archive/tar in this process rather
// than from `git worktree add`: a run's directory then holds plain files and no .git that
// points back into the shared mirror, so build scripts (the repository's own code) cannot
// write into the cache other runs fetch from, and nothing has to be registered in or pruned
// from the mirror — runs never touch each other or the mirror. Builds that need history get
// none; export-ignore and export-subst attributes are switched off (see Mirror) so the files
// are exactly the commit's.
func (w *Workspace) Checkout(ctx context.Context, mirrorDir, commit, dest string) (err error) {
	if !gitref.IsFullCommit(commit) {
		return apperr.Invalid("invalid commit id %q: want a full 40 or 64 digit id", commit)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create checkout parent: %w", err)
	}
	if err := os.Mkdir(dest, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return apperr.Conflict("checkout directory %s already exists", dest)
		}
		return fmt.Errorf("create checkout directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = w.Cleanup(dest)
		}
	}()
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open checkout directory: %w", err)
	}
	defer root.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	cmd, err := w.command(ctx, gitCmd{
		args:   []string{"--git-dir=" + mirrorDir, "archive", "--format=tar", "--end-of-options", commit},
		stdout: pw,
	})
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start git archive: %w", err)
	}
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(err) // nil: the reader sees EOF
		waited <- err
	}()
	extractErr := extract(ctx, tar.NewReader(pr), root)
	if extractErr != nil {
		cancel() // stop git; it may be blocked writing into the pipe
		pr.CloseWithError(extractErr)
	} else {
		_, _ = io.Copy(io.Discard, pr) // git pads the archive after its end marker
	}
	waitErr := <-waited
	switch {
	case extractErr != nil: // includes git failing mid-stream: the pipe carries its error
		return fmt.Errorf("checkout %s: extract: %w", commit, extractErr)
	case waitErr != nil:
		return fmt.Errorf("checkout %s: %w", commit, gitError(ctx, []string{"archive"}, waitErr))
	}
	return nil
}

// extract writes a git archive's entries under root. os.Root keeps every write inside dest
// even through symlinks the repository contains; O_EXCL refuses to write through a symlink
// or over an earlier entry.
func extract(ctx context.Context, tr *tar.Reader, root *os.Root) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue // git's commit id comment
		case tar.TypeDir:
			if name == "." {
				continue
			}
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeFile(root, name, hdr.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			if err = root.MkdirAll(path.Dir(name), 0o755); err == nil {
				err = root.Symlink(hdr.Linkname, name)
			}
		default:
			return fmt.Errorf("archive entry %q: unexpected type %q", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
}

func writeFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cleanName returns an archive entry's name as a clean relative path, refusing absolute
// names and ".." components.
func cleanName(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("archive entry %q: name escapes the directory", name)
	}
	return clean, nil
}

// Cleanup removes a checkout directory made by Checkout, including directories a build made
// read-only (Go's module cache does), which os.RemoveAll alone cannot empty.
func (w *Workspace) Cleanup(dest string) error {
	err := os.RemoveAll(dest)
	if err == nil {
		return nil
	}
	// Make every directory writable and try again.
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("remove checkout %s: %w", dest, err)
	}
	return nil
}
