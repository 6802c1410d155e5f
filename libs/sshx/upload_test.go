package sshx_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/sshx"
	"fabu.dev/libs/sshx/sshtest"
)

// The server runs on this machine, so remote paths are local paths the test can inspect.

func TestUploadSHA256(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "artifact 1.tar.gz") // a space, to exercise quoting
	ctx := context.Background()
	if err := c.Upload(ctx, bytes.NewReader(data), dst, 0o640); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	got, err := c.SHA256(ctx, dst)
	if err != nil {
		t.Fatalf("SHA256: %v", err)
	}
	if got != want {
		t.Errorf("remote SHA256 = %s, want %s", got, want)
	}
	landed, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(landed, data) {
		t.Errorf("uploaded file differs from the data (%d bytes, want %d)", len(landed), len(data))
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o640 {
		t.Errorf("uploaded file mode = %o, want 640", mode)
	}

	// Uploading again replaces the file whole.
	if err := c.Upload(ctx, strings.NewReader("v2"), dst, 0o600); err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "v2" {
		t.Errorf("after second upload file = %q, want %q", b, "v2")
	}
	assertOnly(t, dir, "artifact 1.tar.gz")
}

func TestUploadFailure(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	dir := t.TempDir()
	err := c.Upload(context.Background(), strings.NewReader("x"), filepath.Join(dir, "missing", "f"), 0o644)
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Upload into a missing directory = %v, want an *sshx.ExitError", err)
	}
	assertOnly(t, dir)
}

func TestUploadFailedReaderLeavesNothing(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stalled := make(chan struct{})
	defer close(stalled)
	r := &cancelAfter{data: []byte("partial new content"), cancel: cancel, stalled: stalled}
	if err := c.Upload(ctx, r, dst, 0o644); !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload cancelled mid-stream = %v, want context.Canceled", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Errorf("after a cancelled upload file = %q, want the old content", b)
	}
	assertOnly(t, dir, "f")
}

// cancelAfter yields data and then cancels instead of reaching EOF, like a stream cut off.
type cancelAfter struct {
	data    []byte
	cancel  context.CancelFunc
	stalled chan struct{} // closed when the test ends
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.cancel()
	<-r.stalled // blocks like a stalled network stream; Run must not wait for it
	return 0, io.EOF
}

func TestUploadInvalidPath(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	for _, p := range []string{"relative/f", "/tmp/../etc/passwd", "/", "/tmp/a\nb"} {
		if err := c.Upload(context.Background(), strings.NewReader("x"), p, 0o644); err == nil {
			t.Errorf("Upload to %q succeeded, want an error", p)
		}
	}
	if _, err := c.SHA256(context.Background(), "/tmp/../etc/passwd"); err == nil {
		t.Error("SHA256 of a path with .. succeeded, want an error")
	}
}

func TestSHA256Missing(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	_, err := c.SHA256(context.Background(), filepath.Join(t.TempDir(), "absent"))
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("SHA256 of a missing file = %v, want an *sshx.ExitError", err)
	}
}

// assertOnly checks that dir holds exactly names, so no temporary upload file is left.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, "/") != strings.Join(names, "/") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
