package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// ManifestFormat is the format version of a BuildManifest. A reader refuses other versions
// rather than guess what their fields mean.
const ManifestFormat = 1

// ManifestSuffix ends the name of an artifact's manifest in a store: the manifest of
// artifact "<run id>.tar.gz" is "<run id>.tar.gz.manifest.json", beside it.
const ManifestSuffix = ".manifest.json"

// maxManifest bounds a manifest document a reader accepts (a tree of ~100 000 files).
const maxManifest = 32 << 20

// ErrMismatch marks a manifest that does not describe the artifact it came with: a
// tampered or corrupt artifact or manifest. Check with errors.Is.
var ErrMismatch = errors.New("artifact does not match its manifest")

// ManifestName returns the store name of the manifest of artifact name.
func ManifestName(name string) string { return name + ManifestSuffix }

// ManifestPath returns the file of the manifest of the artifact file path.
func ManifestPath(path string) string { return path + ManifestSuffix }

// IsManifestName reports whether a store name is a manifest's.
func IsManifestName(name string) bool { return strings.HasSuffix(name, ManifestSuffix) }

// File is one entry of an artifact's content: a regular file with its size and SHA-256, or
// a symlink with its target. Directories are implied by the paths.
type File struct {
	Path   string `json:"path"`             // slash-separated, relative to the release directory
	Size   int64  `json:"size"`             // bytes; 0 for a symlink
	Mode   string `json:"mode"`             // "0644" or "0755" for files, "link" for symlinks
	SHA256 string `json:"sha256,omitempty"` // hex; files only
	Link   string `json:"link,omitempty"`   // symlinks only: the relative target
}

// BuildManifest is the manifest of one run's artifact: where it came from (project,
// commit, ref, recipe and the plan's fingerprint, when and by which builder), the archive
// itself (name, size, SHA-256) and every file in it. A jar or war is the archive's one file,
// so the list holds the jar or war itself with its size and SHA-256. It is stored beside the
// artifact, served with it, and checked by the deployer before anything ships.
type BuildManifest struct {
	Format         int             `json:"format"`
	RunID          string          `json:"run_id"`
	Project        ManifestProject `json:"project"`
	Commit         string          `json:"commit"`
	Ref            string          `json:"ref"`
	Recipe         string          `json:"recipe"`
	Fingerprint    string          `json:"fingerprint"`
	Kind           string          `json:"kind"` // "dir": a tree; "file": one file (a jar, a war)
	BuiltAt        time.Time       `json:"built_at"`
	BuilderVersion string          `json:"builder_version"`
	// ReusedFrom names the run whose build this artifact is a copy of ("build once, deploy
	// many"); empty when this run built it.
	ReusedFrom string      `json:"reused_from,omitempty"`
	Artifact   ArchiveInfo `json:"artifact"`
	FileCount  int         `json:"file_count"` // regular files in Files
	TotalSize  int64       `json:"total_size"` // bytes of the regular files, unpacked
	Files      []File      `json:"files"`
}

// ManifestProject names the project a manifest's run belongs to.
type ManifestProject struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ArchiveInfo describes the stored archive.
type ArchiveInfo struct {
	Name   string `json:"name"`
	Format string `json:"format"` // "tar.gz"
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// SetFiles sets the file list and the totals derived from it.
func (m *BuildManifest) SetFiles(files []File) {
	m.Files, m.FileCount, m.TotalSize = files, 0, 0
	for _, f := range files {
		if f.Mode != "link" {
			m.FileCount++
			m.TotalSize += f.Size
		}
	}
	if m.Files == nil {
		m.Files = []File{}
	}
}

// Encode returns m as indented JSON after checking it.
func (m BuildManifest) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseManifest reads a manifest document and checks it (Validate). Unknown fields and
// other format versions are refused.
func ParseManifest(data []byte) (BuildManifest, error) {
	if len(data) > maxManifest {
		return BuildManifest{}, apperr.Invalid("manifest is %d bytes, at most %d allowed", len(data), maxManifest)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m BuildManifest
	if err := dec.Decode(&m); err != nil {
		return BuildManifest{}, apperr.Invalid("manifest is not valid: %v", err)
	}
	if dec.More() {
		return BuildManifest{}, apperr.Invalid("manifest is not valid: data after the document")
	}
	if err := m.Validate(); err != nil {
		return BuildManifest{}, err
	}
	return m, nil
}

// Validate checks that m is well formed: the format version, hex checksums, clean relative
// paths without duplicates, and totals that agree with the file list.
func (m BuildManifest) Validate() error {
	if m.Format != ManifestFormat {
		return apperr.Invalid("manifest format %d is not supported (want %d)", m.Format, ManifestFormat)
	}
	if !isSHA256(m.Artifact.SHA256) {
		return apperr.Invalid("manifest: artifact sha256 %q is not a hex SHA-256", m.Artifact.SHA256)
	}
	if m.Artifact.Size < 0 {
		return apperr.Invalid("manifest: artifact size %d is negative", m.Artifact.Size)
	}
	seen := make(map[string]bool, len(m.Files))
	count, total := 0, int64(0)
	for _, f := range m.Files {
		if name, err := entryName(f.Path); err != nil || name != f.Path {
			return apperr.Invalid("manifest: file path %q is not a clean relative path", f.Path)
		}
		if seen[f.Path] {
			return apperr.Invalid("manifest: file %q is listed twice", f.Path)
		}
		seen[f.Path] = true
		switch f.Mode {
		case "0644", "0755":
			if !isSHA256(f.SHA256) || f.Size < 0 || f.Link != "" {
				return apperr.Invalid("manifest: file %q needs a size and a hex sha256", f.Path)
			}
			count++
			total += f.Size
		case "link":
			if f.Link == "" || f.SHA256 != "" || f.Size != 0 {
				return apperr.Invalid("manifest: symlink %q needs a target and nothing else", f.Path)
			}
		default:
			return apperr.Invalid("manifest: file %q has mode %q (want 0644, 0755 or link)", f.Path, f.Mode)
		}
	}
	if count != m.FileCount || total != m.TotalSize {
		return apperr.Invalid("manifest: file_count %d and total_size %d do not match the list (%d files, %d bytes)",
			m.FileCount, m.TotalSize, count, total)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// ListArchive reads a tar.gz as Unpack would and lists its files and symlinks in archive
// order, hashing each file. Entries Unpack refuses (absolute or ".." names, hard links,
// devices) are apperr Invalid errors; the gzip checksum is verified to the end.
func ListArchive(ctx context.Context, r io.Reader) ([]File, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	tr := tar.NewReader(gz)
	files := []File{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			h := sha256.New()
			n, err := io.Copy(h, ctxReader{ctx, tr})
			if err != nil {
				return nil, fmt.Errorf("read archive entry %q: %w", hdr.Name, err)
			}
			files = append(files, File{Path: name, Size: n, Mode: fileMode(hdr.Mode), SHA256: hex.EncodeToString(h.Sum(nil))})
		case tar.TypeSymlink:
			if err := checkLink(name, hdr.Linkname); err != nil {
				return nil, err
			}
			files = append(files, File{Path: name, Mode: "link", Link: hdr.Linkname})
		default:
			return nil, apperr.Invalid("archive entry %q: type %q is not allowed", hdr.Name, hdr.Typeflag)
		}
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, fmt.Errorf("verify archive: %w", err)
	}
	return files, gz.Close()
}

// fileMode is how a manifest writes a file's permissions: 0755 when any execute bit is set,
// as Pack stores them.
func fileMode(mode int64) string {
	if mode&0o111 != 0 {
		return "0755"
	}
	return "0644"
}

// VerifyArchive checks the artifact file at path against m: its size and SHA-256, then
// every file and symlink in it against m's list (paths, sizes, SHA-256, modes, targets),
// both ways. A difference is an error wrapping ErrMismatch that names the first file that
// differs.
func VerifyArchive(ctx context.Context, m BuildManifest, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return fmt.Errorf("verify artifact: %w", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.Artifact.SHA256 || size != m.Artifact.Size {
		return fmt.Errorf("%w: the artifact has sha256 %s (%d bytes), the manifest says %s (%d bytes)",
			ErrMismatch, sum, size, m.Artifact.SHA256, m.Artifact.Size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("verify artifact: %w", err)
	}
	got, err := ListArchive(ctx, f)
	if err != nil {
		return fmt.Errorf("verify artifact: %w", err)
	}
	return CompareFiles(m.Files, got)
}

// CompareFiles reports the first difference between the files a manifest lists (want) and
// the files found (got), as an error wrapping ErrMismatch; nil when they are the same set.
func CompareFiles(want, got []File) error {
	listed := make(map[string]File, len(want))
	for _, f := range want {
		listed[f.Path] = f
	}
	found := make(map[string]bool, len(got))
	for _, g := range got {
		found[g.Path] = true
		w, ok := listed[g.Path]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is in the artifact but not in the manifest", ErrMismatch, g.Path)
		case w.Mode != g.Mode:
			return fmt.Errorf("%w: %s is %s in the artifact, %s in the manifest", ErrMismatch, g.Path, g.Mode, w.Mode)
		case w.Size != g.Size:
			return fmt.Errorf("%w: %s has %d bytes in the artifact, %d in the manifest", ErrMismatch, g.Path, g.Size, w.Size)
		case w.SHA256 != g.SHA256:
			return fmt.Errorf("%w: %s has sha256 %s in the artifact, %s in the manifest", ErrMismatch, g.Path, g.SHA256, w.SHA256)
		case w.Link != g.Link:
			return fmt.Errorf("%w: symlink %s points to %q in the artifact, %q in the manifest", ErrMismatch, g.Path, g.Link, w.Link)
		}
	}
	for _, w := range want {
		if !found[w.Path] {
			return fmt.Errorf("%w: %s is in the manifest but not in the artifact", ErrMismatch, w.Path)
		}
	}
	return nil
}
