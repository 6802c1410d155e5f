package artifact

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"fabu.dev/libs/apperr"
)

// tree writes files (name → content; "->target" makes a symlink, a name ending in "/" an
// empty directory) under a new directory and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case name[len(name)-1] == '/':
			err = os.MkdirAll(p, 0o755)
		case len(content) > 2 && content[:2] == "->":
			err = os.Symlink(content[2:], p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pack(t *testing.T, src string) (string, Manifest) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "a.tar.gz")
	m, err := Pack(context.Background(), src, dest)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	return dest, m
}

func unpack(t *testing.T, archive string) (string, error) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dest := filepath.Join(t.TempDir(), "out")
	return dest, Unpack(context.Background(), f, dest)
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := tree(t, map[string]string{
		"index.html":         "<h1>hi</h1>",
		"assets/app.js":      "console.log(1)",
		"assets/deep/x.css":  "a{}",
		"bin/run.sh":         "#!/bin/sh\necho ok\n",
		"current":            "->assets/app.js",
		"assets/deep/up":     "->../../index.html",
		"assets/self":        "->.",
		"abs-inside":         "->" + "PLACEHOLDER",
		"empty/":             "",
		"empty/nested/":      "",
		"unicode/文件.txt":     "内容",
		"spaces in/name.txt": "s",
	})
	// An absolute target inside the tree is stored relative.
	if err := os.Remove(filepath.Join(src, "abs-inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "assets", "app.js"), filepath.Join(src, "abs-inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "bin", "run.sh"), 0o750); err != nil {
		t.Fatal(err)
	}
	archive, m := pack(t, src)
	if m.Files != 6 {
		t.Errorf("Manifest.Files = %d, want 6", m.Files)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Size() != m.Size {
		t.Errorf("archive size = %v (%v), want Manifest.Size %d", fi.Size(), err, m.Size)
	}
	if sum, err := SHA256File(archive); err != nil || sum != m.SHA256 {
		t.Errorf("SHA256File = %q, %v; want Manifest.SHA256 %q", sum, err, m.SHA256)
	}

	dest, err := unpack(t, archive)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	for name, want := range map[string]string{
		"index.html": "<h1>hi</h1>", "assets/app.js": "console.log(1)", "assets/deep/x.css": "a{}",
		"current": "console.log(1)", "assets/deep/up": "<h1>hi</h1>", "abs-inside": "console.log(1)",
		"unicode/文件.txt": "内容", "spaces in/name.txt": "s", "assets/self/app.js": "console.log(1)",
	} {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for link, want := range map[string]string{"current": "assets/app.js", "abs-inside": "assets/app.js", "assets/self": "."} {
		if got, err := os.Readlink(filepath.Join(dest, link)); err != nil || got != want {
			t.Errorf("Readlink(%s) = %q, %v; want %q", link, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "bin", "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/run.sh lost its execute bit: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "empty", "nested")); err != nil || !fi.IsDir() {
		t.Errorf("empty/nested is not a directory after the round trip: %v", err)
	}
	// Packing what was unpacked gives the same bytes.
	if _, again := pack(t, dest); again.SHA256 != m.SHA256 {
		t.Errorf("repacked unpacked tree: sha256 %s, want %s", again.SHA256, m.SHA256)
	}
}

func TestPackIsDeterministic(t *testing.T) {
	files := map[string]string{"b.txt": "b", "a/z.txt": "z", "a/y.txt": "y", "l": "->a/y.txt", "e/": ""}
	src1, src2 := tree(t, files), tree(t, files)
	// Different times, permissions beyond the execute bit, and creation order must not matter.
	if err := os.Chtimes(filepath.Join(src2, "b.txt"), epoch.AddDate(5, 0, 0), epoch.AddDate(7, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src2, "a", "z.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, m1 := pack(t, src1)
	_, m1again := pack(t, src1)
	_, m2 := pack(t, src2)
	if !reflect.DeepEqual(m1, m1again) || !reflect.DeepEqual(m1, m2) {
		t.Fatalf("manifests differ: %+v, %+v, %+v", m1, m1again, m2)
	}
	src3 := tree(t, map[string]string{"b.txt": "B", "a/z.txt": "z", "a/y.txt": "y", "l": "->a/y.txt", "e/": ""})
	if _, m3 := pack(t, src3); m3.SHA256 == m1.SHA256 {
		t.Fatal("different content gave the same sha256")
	}
}

func TestPackLargeTree(t *testing.T) {
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range 16 {
		b := make([]byte, 64<<10) // 16 × 64 KiB = 1 MiB of incompressible data
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join("d"+string(rune('a'+i%4)), "f"+string(rune('a'+i)))
		want[name] = b
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive, m := pack(t, src)
	if m.Files != 16 || m.Size < 1<<20 {
		t.Fatalf("manifest %+v: want 16 files and at least 1 MiB", m)
	}
	dest, err := unpack(t, archive)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s differs after the round trip (%v)", name, err)
		}
	}
}

func TestPackEmptyDir(t *testing.T) {
	archive, m := pack(t, t.TempDir())
	if m.Files != 0 || m.Size == 0 {
		t.Fatalf("manifest %+v: want 0 files in a non-empty gzip stream", m)
	}
	dest, err := unpack(t, archive)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dest); err != nil || len(entries) != 0 {
		t.Fatalf("unpacked empty archive: %v, %v; want an empty directory", entries, err)
	}
}

func TestPackRefuses(t *testing.T) {
	fifo := tree(t, map[string]string{"a": "a"})
	if err := syscall.Mkfifo(filepath.Join(fifo, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	tests := []struct {
		name string
		src  string
		dest func(src string) string
	}{
		{"relative symlink out of the tree", tree(t, map[string]string{"l": "->../../etc/passwd"}), nil},
		{"absolute symlink out of the tree", tree(t, map[string]string{"l": "->/etc/passwd"}), nil},
		{"symlink to the tree's parent", tree(t, map[string]string{"d/l": "->../.."}), nil},
		{"named pipe", fifo, nil},
		{"destination inside the source", tree(t, map[string]string{"a": "a"}), func(src string) string { return filepath.Join(src, "out.tar.gz") }},
		{"source is not a directory", filepath.Join(tree(t, map[string]string{"f": "x"}), "f"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(outside, tt.name+".tar.gz")
			if tt.dest != nil {
				dest = tt.dest(tt.src)
			}
			_, err := Pack(context.Background(), tt.src, dest)
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("Pack error = %v, want invalid", err)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Fatalf("refused Pack left %s (stat error %v)", dest, err)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(outside, ".*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestPackStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := filepath.Join(t.TempDir(), "a.tar.gz")
	if _, err := Pack(ctx, tree(t, map[string]string{"a": "a"}), dest); err == nil {
		t.Fatal("Pack succeeded with a cancelled context")
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("cancelled Pack left %s (stat error %v)", dest, err)
	}
}
