package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"fabu.dev/libs/apperr"
)

// Unpack extracts the tar.gz read from r into destDir, creating destDir if needed. It
// accepts what Pack writes and refuses, with an apperr Invalid error, anything that could
// reach outside destDir or change what is there: absolute names and ".." components, entries
// below a symlink, symlinks that are absolute, not clean or point out of destDir, hard links,
// devices, pipes, and entries that already exist (files are never overwritten). Permissions
// keep only the 0777 bits. The gzip checksum is verified to the end of the stream. On error
// destDir may hold part of the archive; the caller removes it.
func Unpack(ctx context.Context, r io.Reader, destDir string) error {
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return fmt.Errorf("unpack into %s: %w", destDir, err)
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", destDir, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", destDir, err)
	}
	tr := tar.NewReader(gz)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("unpack into %s: %w", destDir, err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack into %s: read archive: %w", destDir, err)
		}
		if err := unpackEntry(ctx, root, hdr, tr); err != nil {
			return fmt.Errorf("unpack into %s: %w", destDir, err)
		}
	}
	// Reading to the end makes gzip check its CRC and length.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("unpack into %s: verify archive: %w", destDir, err)
	}
	return gz.Close()
}

func unpackEntry(ctx context.Context, root *os.Root, hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if err := checkParents(root, name); err != nil {
		return err
	}
	perm := fs.FileMode(hdr.Mode) & 0o777
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := root.Lstat(name)
		if err == nil && !fi.IsDir() {
			return apperr.Invalid("archive entry %q: exists and is not a directory", hdr.Name)
		}
		if err != nil {
			return root.MkdirAll(name, perm|0o700)
		}
		return nil
	case tar.TypeReg:
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return err
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return createError(hdr.Name, err)
		}
		_, err = io.Copy(f, ctxReader{ctx, r})
		if err = errors.Join(err, f.Close()); err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
		return nil
	case tar.TypeSymlink:
		if err := checkLink(name, hdr.Linkname); err != nil {
			return err
		}
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return err
		}
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return createError(hdr.Name, err)
		}
		return nil
	default:
		return apperr.Invalid("archive entry %q: type %q is not allowed", hdr.Name, hdr.Typeflag)
	}
}

// createError reports a failed create; an entry that already exists is the archive's fault.
func createError(name string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return apperr.Wrap(err, apperr.CodeInvalid, "archive entry %q: already exists", name)
	}
	return fmt.Errorf("archive entry %q: %w", name, err)
}

// entryName returns the clean relative name of an entry, refusing absolute names, ".."
// components and NUL bytes.
func entryName(name string) (string, error) {
	trimmed := strings.TrimSuffix(name, "/")
	if trimmed == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", apperr.Invalid("archive entry %q: not a relative name", name)
	}
	for comp := range strings.SplitSeq(trimmed, "/") {
		if comp == ".." {
			return "", apperr.Invalid("archive entry %q: contains \"..\"", name)
		}
	}
	clean := path.Clean(trimmed)
	if clean == "." {
		return "", apperr.Invalid("archive entry %q: names the destination itself", name)
	}
	return clean, nil
}

// checkParents refuses an entry below an existing symlink: os.Root would keep the write
// inside destDir, but the entry would land somewhere other than its name says.
func checkParents(root *os.Root, name string) error {
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		fi, err := root.Lstat(name[:i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing below it exists either
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return apperr.Invalid("archive entry %q: %s is not a directory", name, name[:i])
		}
	}
	return nil
}

// checkLink allows a symlink only with a clean relative target that stays inside destDir
// when resolved from the link's directory. Because no entry may lie below a symlink, every
// link sits in a real directory, so a target passing this check cannot reach outside
// destDir even through other links.
func checkLink(name, target string) error {
	if target == "" || path.IsAbs(target) || path.Clean(target) != target || strings.ContainsRune(target, 0) {
		return apperr.Invalid("symlink %q: target %q must be a clean relative path", name, target)
	}
	resolved := path.Join(path.Dir(name), target)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return apperr.Invalid("symlink %q: target %q points outside the destination", name, target)
	}
	return nil
}
