package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
)

// manifestOf builds the manifest of a packed artifact as the builder does.
func manifestOf(archive string, m Manifest) BuildManifest {
	bm := BuildManifest{Format: ManifestFormat, RunID: "r1", Project: ManifestProject{ID: "p1", Name: "shop"},
		Commit: strings.Repeat("a", 40), Ref: "main", Recipe: "static", Fingerprint: strings.Repeat("f", 64), Kind: "dir",
		BuiltAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), BuilderVersion: "test",
		Artifact: ArchiveInfo{Name: filepath.Base(archive), Format: "tar.gz", Size: m.Size, SHA256: m.SHA256}}
	bm.SetFiles(m.Entries)
	return bm
}

func TestPackListsWhatListArchiveReads(t *testing.T) {
	src := tree(t, map[string]string{"index.html": "<h1>hi</h1>", "js/app.js": "x()", "bin/run": "#!/bin/sh", "latest": "->js/app.js", "empty/": ""})
	if err := os.Chmod(filepath.Join(src, "bin", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive, m := pack(t, src)
	want := []File{
		{Path: "bin/run", Size: 9, Mode: "0755"},
		{Path: "index.html", Size: 11, Mode: "0644"},
		{Path: "js/app.js", Size: 3, Mode: "0644"},
		{Path: "latest", Mode: "link", Link: "js/app.js"},
	}
	if len(m.Entries) != len(want) {
		t.Fatalf("Pack listed %+v, want %d entries", m.Entries, len(want))
	}
	for i, w := range want {
		g := m.Entries[i]
		if g.Path != w.Path || g.Size != w.Size || g.Mode != w.Mode || g.Link != w.Link {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
		if w.Mode != "link" {
			sum, err := SHA256File(filepath.Join(src, filepath.FromSlash(w.Path)))
			if err != nil {
				t.Fatal(err)
			}
			if g.SHA256 != sum {
				t.Errorf("%s: sha256 %s, want the file's %s", g.Path, g.SHA256, sum)
			}
		}
	}
	if m.Files != 3 {
		t.Errorf("Files = %d, want 3", m.Files)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed, err := ListArchive(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(listed, m.Entries) {
		t.Errorf("ListArchive = %+v\nPack listed %+v", listed, m.Entries)
	}
}

func TestManifestRoundTripAndVerify(t *testing.T) {
	archive, m := pack(t, tree(t, map[string]string{"a.txt": "alpha", "b/c.txt": "gamma"}))
	bm := manifestOf(archive, m)
	if bm.FileCount != 2 || bm.TotalSize != 10 {
		t.Errorf("file_count %d, total_size %d; want 2 and 10", bm.FileCount, bm.TotalSize)
	}
	data, err := bm.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, bm) {
		t.Errorf("round trip changed the manifest:\n got %+v\nwant %+v", back, bm)
	}
	if err := VerifyArchive(context.Background(), back, archive); err != nil {
		t.Errorf("VerifyArchive of the untouched artifact: %v", err)
	}
}

func TestVerifyArchiveFindsTampering(t *testing.T) {
	archive, m := pack(t, tree(t, map[string]string{"a.txt": "alpha", "b/c.txt": "gamma"}))
	other, om := pack(t, tree(t, map[string]string{"a.txt": "alpha", "b/c.txt": "GAMMA"}))
	tests := []struct {
		name    string
		edit    func(*BuildManifest)
		archive string
		want    string
	}{
		{"artifact replaced", func(*BuildManifest) {}, other, "the artifact has sha256 " + om.SHA256},
		{"file hash changed", func(b *BuildManifest) { b.Files[0].SHA256 = strings.Repeat("0", 64) }, archive, "a.txt has sha256"},
		{"file size changed", func(b *BuildManifest) { b.Files[1].Size = 4; b.TotalSize = 9 }, archive, "b/c.txt has 5 bytes in the artifact, 4 in the manifest"},
		{"file missing from the list", func(b *BuildManifest) { b.SetFiles(b.Files[:1]) }, archive, "b/c.txt is in the artifact but not in the manifest"},
		{"extra file listed", func(b *BuildManifest) {
			b.SetFiles(append(b.Files, File{Path: "evil.sh", Size: 1, Mode: "0755", SHA256: strings.Repeat("1", 64)}))
		}, archive, "evil.sh is in the manifest but not in the artifact"},
		{"mode changed", func(b *BuildManifest) { b.Files[0].Mode = "0755" }, archive, "a.txt is 0644 in the artifact, 0755 in the manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bm := manifestOf(archive, m)
			bm.Files = append([]File(nil), bm.Files...)
			tt.edit(&bm)
			err := VerifyArchive(context.Background(), bm, tt.archive)
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("VerifyArchive = %v, want ErrMismatch saying %q", err, tt.want)
			}
		})
	}
}

func TestParseManifestRefuses(t *testing.T) {
	archive, m := pack(t, tree(t, map[string]string{"a.txt": "alpha"}))
	good, err := manifestOf(archive, m).Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"other format", `"format": 1`, `"format": 2`, "format 2 is not supported"},
		{"unknown field", `"format": 1`, `"format": 1, "extra": true`, "unknown field"},
		{"escaping path", `"path": "a.txt"`, `"path": "../a.txt"`, "not a clean relative path"},
		{"absolute path", `"path": "a.txt"`, `"path": "/etc/passwd"`, "not a clean relative path"},
		{"bad file hash", `"mode": "0644",`, `"mode": "0644", "link": "x",`, "needs a size and a hex sha256"},
		{"bad mode", `"mode": "0644"`, `"mode": "4755"`, `mode "4755"`},
		{"totals disagree", `"file_count": 1`, `"file_count": 2`, "do not match the list"},
		{"artifact hash not hex", `"sha256": "` + m.SHA256 + `"`, `"sha256": "nothex"`, "not a hex SHA-256"},
		{"two documents", "", "{}", "data after the document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(good), tt.from, tt.to, 1)
			if tt.from == "" {
				bad = string(good) + tt.to
			}
			if bad == string(good) {
				t.Fatalf("%q not in the manifest:\n%s", tt.from, good)
			}
			_, err := ParseManifest([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseManifest = %v, want an error saying %q", err, tt.want)
			}
			if code, _ := apperr.Public(err); code != apperr.CodeInvalid {
				t.Errorf("code %q, want invalid", code)
			}
		})
	}
}

func TestListArchiveRefusesHostileEntries(t *testing.T) {
	for _, tt := range []struct {
		name string
		e    entry
	}{
		{"dot-dot", file("../x", "x")},
		{"absolute", file("/etc/x", "x")},
		{"escaping symlink", link("l", "../../etc")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ListArchive(context.Background(), strings.NewReader(string(targz(t, tt.e))))
			if code, _ := apperr.Public(err); code != apperr.CodeInvalid {
				t.Errorf("ListArchive = %v, want an invalid error", err)
			}
		})
	}
}
