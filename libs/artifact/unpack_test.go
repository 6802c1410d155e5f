package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"fabu.dev/libs/apperr"
)

// entry is one hand-made tar entry.
type entry struct {
	name, link, body string
	typ              byte
}

func targz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)[:hdr.Size]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
func link(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink}
}

func TestUnpackRejectsHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"dot-dot", []entry{file("../evil", "x")}},
		{"nested dot-dot", []entry{file("a/../../evil", "x")}},
		{"dot-dot that cleans inside", []entry{file("a/../b", "x")}},
		{"absolute", []entry{file("/tmp/evil", "x")}},
		{"symlink out then write through it", []entry{link("l", "../.."), file("l/evil", "x")}},
		{"write through an inside symlink", []entry{{name: "d/", typ: tar.TypeDir}, link("l", "d"), file("l/x", "x")}},
		{"absolute symlink", []entry{link("l", "/etc")}},
		{"escaping symlink", []entry{link("a/l", "../../etc")}},
		{"unclean symlink", []entry{link("s", "."), link("t", "s/../../etc")}},
		{"hard link", []entry{file("a", "x"), {name: "b", link: "/etc/passwd", typ: tar.TypeLink}}},
		{"character device", []entry{{name: "null", typ: tar.TypeChar}}},
		{"block device", []entry{{name: "sda", typ: tar.TypeBlock}}},
		{"fifo", []entry{{name: "p", typ: tar.TypeFifo}}},
		{"overwrite a file", []entry{file("a", "first"), file("a", "second")}},
		{"replace a symlink with a file", []entry{link("a", "b"), file("a", "x")}},
		{"directory over a file", []entry{file("a", "x"), {name: "a/", typ: tar.TypeDir}}},
		{"empty name", []entry{file("", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "a", "b", "out")
			err := Unpack(context.Background(), bytes.NewReader(targz(t, tt.entries...)), dest)
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("Unpack error = %v, want invalid", err)
			}
			for _, p := range []string{filepath.Join(parent, "evil"), filepath.Join(parent, "a", "evil"), "/tmp/evil"} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Fatalf("Unpack wrote %s outside the destination", p)
				}
			}
		})
	}
}

func TestUnpackRejectsCorruptArchives(t *testing.T) {
	good := targz(t, file("a", "hello"))
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-5] ^= 0xff // inside the gzip CRC/length trailer
	for name, data := range map[string][]byte{
		"not gzip":  []byte("plain text, not an archive"),
		"truncated": good[:len(good)/2],
		"bad crc":   corrupt,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Unpack(context.Background(), bytes.NewReader(data), t.TempDir()); err == nil {
				t.Fatal("Unpack succeeded")
			}
		})
	}
}

func TestUnpackKeepsModesInBounds(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "suid", Typeflag: tar.TypeReg, Mode: 0o4755, Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	if err := Unpack(context.Background(), &buf, dest); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dest, "suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		t.Fatalf("mode %v keeps special bits", fi.Mode())
	}
}
