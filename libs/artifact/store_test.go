package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

func newDir(t *testing.T) (*Dir, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifacts")
	d, err := NewDir(p)
	if err != nil {
		t.Fatal(err)
	}
	return d, p
}

func TestDirPutOpenListDelete(t *testing.T) {
	ctx := context.Background()
	d, dir := newDir(t)
	if l, err := d.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List of a store never written = %v, %v; want empty", l, err)
	}
	body := bytes.Repeat([]byte("artifact bytes "), 5000)
	sum, n, err := d.Put(ctx, "01RUN.tar.gz", bytes.NewReader(body))
	want := sha256.Sum256(body)
	if err != nil || sum != hex.EncodeToString(want[:]) || n != int64(len(body)) {
		t.Fatalf("Put = %s, %d, %v; want %x, %d", sum, n, err, want, len(body))
	}
	if _, _, err := d.Put(ctx, "01RUN.tar.gz", strings.NewReader("other")); apperrCode(err) != apperr.CodeConflict {
		t.Errorf("second Put of one name = %v, want a conflict", err)
	}
	rc, size, err := d.Open(ctx, "01RUN.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if size != int64(len(body)) || !bytes.Equal(got, body) {
		t.Errorf("Open returned %d bytes (size %d), not what was put", len(got), size)
	}
	// Files that are not artifacts are not listed: temporaries and directories.
	if err := os.WriteFile(filepath.Join(dir, ".01X.tar.gz.tmp-1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Put(ctx, "00A.jar", strings.NewReader("jar")); err != nil {
		t.Fatal(err)
	}
	l, err := d.List(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "00A.jar" || l[1].Name != "01RUN.tar.gz" || l[1].Size != int64(len(body)) || l[1].ModTime.IsZero() {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if err := d.Delete(ctx, "01RUN.tar.gz"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "01RUN.tar.gz"); err != nil {
		t.Errorf("deleting a missing artifact = %v, want nil", err)
	}
	if _, _, err := d.Open(ctx, "01RUN.tar.gz"); apperrCode(err) != apperr.CodeNotFound {
		t.Errorf("Open after Delete = %v, want not found", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 { // 00A.jar, the temporary, sub
		t.Errorf("directory holds %d entries, want 3 (no leftovers of Put)", len(ents))
	}
}

func TestDirPutFailureLeavesNothing(t *testing.T) {
	d, dir := newDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.Put(ctx, "a.tar.gz", strings.NewReader("data")); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed Put left %d files", len(ents))
	}
}

func TestDirRefusesBadNames(t *testing.T) {
	d, _ := newDir(t)
	ctx := context.Background()
	for _, name := range []string{"", ".", "..", "../x", "a/b", ".hidden", "a b", "a\x00b", "é.tar.gz", strings.Repeat("a", 201)} {
		if _, _, err := d.Put(ctx, name, strings.NewReader("x")); apperrCode(err) != apperr.CodeInvalid {
			t.Errorf("Put(%q) = %v, want invalid", name, err)
		}
		if _, _, err := d.Open(ctx, name); apperrCode(err) != apperr.CodeInvalid {
			t.Errorf("Open(%q) = %v, want invalid", name, err)
		}
		if err := d.Delete(ctx, name); apperrCode(err) != apperr.CodeInvalid {
			t.Errorf("Delete(%q) = %v, want invalid", name, err)
		}
	}
	if _, err := NewDir("relative/dir"); err == nil {
		t.Error("NewDir accepted a relative path")
	}
	if NameOf("/data/artifacts/01RUN.tar.gz") != "01RUN.tar.gz" || NameOf("/data/artifacts/.tmp") != "" {
		t.Error("NameOf")
	}
}

func apperrCode(err error) apperr.Code {
	if err == nil {
		return ""
	}
	c, _ := apperr.Public(err)
	return c
}
