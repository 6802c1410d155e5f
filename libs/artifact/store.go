package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"fabu.dev/libs/apperr"
)

// Store keeps packed artifacts by name. The builder writes to its store; other machines
// read an artifact through a signed URL (see Signer and Handler), so builder and deployer
// need not share a disk.
type Store interface {
	// Put stores the bytes of r as name, replacing nothing: the artifact appears complete
	// or not at all. It returns the hex SHA-256 and size of what was stored.
	Put(ctx context.Context, name string, r io.Reader) (sha string, size int64, err error)
	// Open opens artifact name for reading and returns its size; a missing artifact is an
	// apperr NotFound error.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
	// Delete removes artifact name; deleting a missing artifact is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the stored artifacts in name order.
	List(ctx context.Context) ([]Info, error)
}

// Info describes a stored artifact.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// CheckName accepts an artifact name: 1–200 characters of [A-Za-z0-9._-], not starting
// with a dot (temporary files start with one) and not "." or "..". Names come from URLs, so
// nothing else may reach the file system.
func CheckName(name string) error {
	if name == "" || len(name) > 200 || name[0] == '.' {
		return apperr.Invalid("artifact name %q is not valid", name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return apperr.Invalid("artifact name %q is not valid", name)
		}
	}
	return nil
}

// Dir is a Store in a directory of the local file system: artifact name is the file
// <dir>/<name>. It is the builder's artifact directory.
type Dir struct {
	path string
}

// NewDir returns the store in directory path, which must be absolute; it is created on the
// first Put.
func NewDir(path string) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("artifact store: directory %q must be absolute", path)
	}
	return &Dir{path: filepath.Clean(path)}, nil
}

// Path returns the local file of artifact name.
func (d *Dir) Path(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return filepath.Join(d.path, name), nil
}

// Put writes r to a temporary file in the directory, syncs it and renames it into place.
// An existing artifact of the same name is an apperr Conflict error: artifacts are
// immutable once announced.
func (d *Dir) Put(ctx context.Context, name string, r io.Reader) (string, int64, error) {
	dest, err := d.Path(name)
	if err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(d.path, 0o750); err != nil {
		return "", 0, fmt.Errorf("artifact store: %w", err)
	}
	tmp, err := os.CreateTemp(d.path, "."+name+".put-*")
	if err != nil {
		return "", 0, fmt.Errorf("artifact store: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("artifact store: write %s: %w", name, err)
	}
	// A hard link fails when the name exists, so a concurrent Put of one name never
	// replaces what another wrote.
	if err := os.Link(tmp.Name(), dest); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", 0, apperr.New(apperr.CodeConflict, "artifact %s already exists", name)
		}
		return "", 0, fmt.Errorf("artifact store: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Open opens artifact name.
func (d *Dir) Open(_ context.Context, name string) (io.ReadCloser, int64, error) {
	p, err := d.Path(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, apperr.NotFound("artifact %s does not exist", name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("artifact store: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("artifact store: %w", err)
	}
	return f, fi.Size(), nil
}

// Delete removes artifact name.
func (d *Dir) Delete(_ context.Context, name string) error {
	p, err := d.Path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("artifact store: %w", err)
	}
	return nil
}

// List returns the regular files with valid artifact names; temporary files (".…") and
// anything else in the directory are left out. A directory that does not exist yet is
// empty.
func (d *Dir) List(ctx context.Context) ([]Info, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !e.Type().IsRegular() || CheckName(e.Name()) != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("artifact store: %w", err)
		}
		out = append(out, Info{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NameOf returns the artifact name of a file path in a Dir store (its base name), or ""
// when the base name is not a valid artifact name.
func NameOf(path string) string {
	b := filepath.Base(path)
	if CheckName(b) != nil {
		return ""
	}
	return b
}
