// Package artifact packages a build's output as a deterministic tar.gz and unpacks one
// safely.
//
// The same tree always gives the same bytes, so an artifact's SHA-256 identifies its content:
// entries are in sorted order with fixed times, owners and permissions, and symlinks are
// stored as symlinks, never followed, and only when they stay inside the tree.
package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// Manifest describes a packed artifact.
type Manifest struct {
	SHA256 string // hex SHA-256 of the tar.gz file
	Size   int64  // bytes of the tar.gz file
	Files  int    // regular files in the archive
	// Entries lists the archive's files and symlinks in archive order, each file with its
	// size and SHA-256: the file list of the artifact's BuildManifest.
	Entries []File
}

// epoch is the modification time of every entry, so that packing does not depend on when the
// files were written.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Pack writes the tree under srcDir as a gzip-compressed tar to destFile and describes it.
// Directories, regular files and symlinks are stored, in lexical order, with the fixed time
// 2000-01-01T00:00:00Z, owner 0:0 and no owner names; files get mode 0755 when any execute bit
// is set and 0644 otherwise, directories 0755. A symlink is stored with its target made a
// clean path relative to the link, and only if that target lies inside srcDir; one pointing
// out of srcDir, or any device, socket or pipe, is an apperr Invalid error. Nothing is read
// through a symlink. destFile must not be inside srcDir; it is written to a temporary file in
// its directory and renamed into place only when complete, so it is never seen half written.
func Pack(ctx context.Context, srcDir, destFile string) (Manifest, error) {
	return PackWithout(ctx, srcDir, destFile)
}

// PackWithout is Pack leaving out every entry, at any depth, whose name is one of names
// (a directory with all it holds): files in the build's tree that are not part of what
// it ships, such as its pipeline file.
func PackWithout(ctx context.Context, srcDir, destFile string, names ...string) (Manifest, error) {
	skip := map[string]bool{}
	for _, n := range names {
		skip[n] = true
	}
	root, err := filepath.Abs(srcDir)
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", srcDir, err)
	}
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
		return Manifest{}, apperr.Invalid("pack %s: not a directory", srcDir)
	}
	dest, err := filepath.Abs(destFile)
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", srcDir, err)
	}
	if within(root, dest) {
		return Manifest{}, apperr.Invalid("pack %s: destination %s is inside the source", srcDir, destFile)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: create temporary file: %w", srcDir, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // fails harmlessly once renamed
	}()

	hash := sha256.New()
	count := &countWriter{}
	gz := gzip.NewWriter(io.MultiWriter(tmp, hash, count))
	tw := tar.NewWriter(gz)
	entries, err := writeTree(ctx, tw, root, skip)
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", srcDir, err)
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return Manifest{}, fmt.Errorf("pack %s: finish archive: %w", srcDir, err)
	}
	if err := errors.Join(tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return Manifest{}, fmt.Errorf("pack %s: write %s: %w", srcDir, tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", srcDir, err)
	}
	files := 0
	for _, e := range entries {
		if e.Mode != "link" {
			files++
		}
	}
	return Manifest{SHA256: hex.EncodeToString(hash.Sum(nil)), Size: count.n, Files: files, Entries: entries}, nil
}

// writeTree adds every entry under root but those named in skip to tw and lists the files
// and symlinks it added. filepath.WalkDir visits entries in lexical order and does not
// follow symlinks.
func writeTree(ctx context.Context, tw *tar.Writer, root string, skip map[string]bool) (entries []File, err error) {
	entries = []File{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if skip[d.Name()] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		switch t := d.Type(); {
		case t.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
			return tw.WriteHeader(hdr)
		case t.IsRegular():
			f, err := writeFile(ctx, tw, hdr, p)
			if err == nil {
				entries = append(entries, f)
			}
			return err
		case t&fs.ModeSymlink != 0:
			target, err := linkTarget(root, p, name)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
			entries = append(entries, File{Path: name, Mode: "link", Link: target})
			return tw.WriteHeader(hdr)
		default:
			return apperr.Invalid("%s is a %s, not a file, directory or symlink", name, t.Type())
		}
	})
	return entries, err
}

// writeFile adds the regular file p and describes it, hashing what it stores.
func writeFile(ctx context.Context, tw *tar.Writer, hdr *tar.Header, p string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s changed type while packing", hdr.Name)
	}
	hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
	if fi.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return File{}, err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tw, h), ctxReader{ctx, f}, fi.Size()); err != nil {
		return File{}, fmt.Errorf("copy %s: %w", hdr.Name, err)
	}
	return File{Path: hdr.Name, Size: fi.Size(), Mode: fileMode(hdr.Mode), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// linkTarget returns the target of the symlink p (named name inside root) as a clean path
// relative to the link's directory, refusing targets outside root.
func linkTarget(root, p, name string) (string, error) {
	target, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	var inTree string // the target as a slash path relative to root
	if filepath.IsAbs(target) {
		rel, err := filepath.Rel(root, filepath.Clean(target))
		if err != nil || !local(filepath.ToSlash(rel)) {
			return "", apperr.Invalid("symlink %s points out of the tree (%s)", name, target)
		}
		inTree = filepath.ToSlash(rel)
	} else {
		inTree = path.Join(path.Dir(name), filepath.ToSlash(target))
		if !local(inTree) {
			return "", apperr.Invalid("symlink %s points out of the tree (%s)", name, target)
		}
	}
	rel, err := filepath.Rel(filepath.FromSlash(path.Dir(name)), filepath.FromSlash(inTree))
	if err != nil {
		return "", fmt.Errorf("symlink %s: %w", name, err)
	}
	return filepath.ToSlash(rel), nil
}

// local reports whether the clean slash path p stays inside its root ("." is the root).
func local(p string) bool {
	return p != ".." && !strings.HasPrefix(p, "../") && !path.IsAbs(p)
}

// within reports whether the absolute path p is dir or lies under it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && local(filepath.ToSlash(rel))
}

// SHA256File returns the hex SHA-256 of the file at path, to check an artifact against its
// manifest.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
