package deployer

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
)

// builderSide is a builder on "another machine": its artifact store, served by the
// builder's handler behind a real HTTP server, with a signer of its own.
type builderSide struct {
	store  *artifact.Dir
	signer *artifact.Signer
	srv    *httptest.Server
	mangle func(w http.ResponseWriter, r *http.Request) bool // true: request answered here
}

func newBuilderSide(t *testing.T) *builderSide {
	t.Helper()
	st, err := artifact.NewDir(filepath.Join(t.TempDir(), "builder-artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	sg, err := artifact.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	b := &builderSide{store: st, signer: sg}
	h := artifact.Handler(st, sg, nil)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.mangle != nil && b.mangle(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// remote moves ev's artifact into the builder's store and points ev at it the way a
// builder on another machine does: a path this machine cannot read, and a signed URL.
func (b *builderSide) remote(t *testing.T, ev *events.RunBuilt) []byte {
	t.Helper()
	data, err := os.ReadFile(ev.ArtifactPath)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(ev.ArtifactPath)
	name := ev.RunID + ".tar.gz"
	if _, _, err := b.store.Put(context.Background(), name, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ev.ArtifactPath = "/var/lib/fabu-on-the-builder/artifacts/" + name
	if ev.ArtifactURL, err = b.signer.URL(b.srv.URL, name, time.Hour); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDeployFetchesArtifactFromBuilder(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where fetched artifacts wait for upload
	e := newEnv(t)
	b := newBuilderSide(t)

	good := e.built("fetched release")
	b.remote(t, &good)
	e.s.deploy(context.Background(), good)
	r := e.run(good.RunID)
	if r.Status != runs.StatusSucceeded {
		t.Fatalf("deploy of a fetched artifact = %s %q\n%s", r.Status, r.Error, logText(t, e, good.RunID))
	}
	if rel, html := e.current(); rel != good.RunID || html != "fetched release" {
		t.Errorf("current = %s %q, want the fetched release", rel, html)
	}
	log := logText(t, e, good.RunID)
	if !strings.Contains(log, "fetching it from the builder") || !strings.Contains(log, "verified") || strings.Contains(log, "sig=") {
		t.Errorf("log does not tell of the verified fetch, or shows the signature:\n%s", log)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("fetched artifact left behind: %v", left)
	}

	tests := []struct {
		name    string
		prepare func(ev *events.RunBuilt, data []byte)
		wantErr string
	}{
		{"builder serves other bytes", func(ev *events.RunBuilt, data []byte) {
			name := ev.RunID + ".tar.gz"
			if err := b.store.Delete(context.Background(), name); err != nil {
				t.Fatal(err)
			}
			other := append(bytes.Clone(data), 0)
			if _, _, err := b.store.Put(context.Background(), name, bytes.NewReader(other)); err != nil {
				t.Fatal(err)
			}
		}, "artifact checksum"},
		{"announced checksum differs", func(ev *events.RunBuilt, _ []byte) {
			ev.ArtifactSHA256 = strings.Repeat("0", 64)
		}, "artifact checksum"},
		{"body cut short", func(ev *events.RunBuilt, data []byte) {
			b.mangle = func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				_, _ = w.Write(data[:len(data)/2])
				return true
			}
		}, "fetch"},
		{"signature tampered", func(ev *events.RunBuilt, _ []byte) {
			ev.ArtifactURL = strings.Replace(ev.ArtifactURL, "sig=", "sig=00", 1)
		}, "403"},
		{"builder unreachable", func(ev *events.RunBuilt, _ []byte) {
			ev.ArtifactURL = "http://127.0.0.1:1" + ev.ArtifactURL[len(b.srv.URL):]
		}, "fetch"},
		{"no URL announced", func(ev *events.RunBuilt, _ []byte) {
			ev.ArtifactURL = ""
		}, "read artifact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.mangle = nil
			ev := e.built("bad " + tt.name)
			data := b.remote(t, &ev)
			tt.prepare(&ev, data)
			e.s.deploy(context.Background(), ev)
			r := e.run(ev.RunID)
			if r.Status != runs.StatusFailed || !strings.Contains(r.Error, tt.wantErr) {
				t.Errorf("run = %s %q, want failed with %q", r.Status, r.Error, tt.wantErr)
			}
			if strings.Contains(r.Error, "sig=") {
				t.Errorf("the run's error shows the URL's signature: %q", r.Error)
			}
			// Nothing reached the server: no release directory, current unchanged.
			if _, err := os.Stat(filepath.Join(e.path, "releases", ev.RunID)); !os.IsNotExist(err) {
				t.Errorf("release directory exists on the target: %v", err)
			}
			if rel, _ := e.current(); rel != good.RunID {
				t.Errorf("current = %s, want %s kept", rel, good.RunID)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("a failed fetch left %v behind", left)
			}
			if !e.lockFree(ev) {
				t.Error("lock still held after the failed run")
			}
		})
	}
}

// A deployer reads the builder's file when it lies in the artifact directory they share,
// and never fetches it then; a file elsewhere — another data directory on the same host —
// is not trusted to be shared and is fetched by URL.
func TestDeploySharedDirectory(t *testing.T) {
	e := newEnv(t)
	b := newBuilderSide(t)
	fetches := 0
	b.mangle = func(http.ResponseWriter, *http.Request) bool { fetches++; return false }

	e.s.cfg.ArtifactDir = e.dir // where e.built packs artifacts
	ev := e.built("shared")
	ev.ArtifactURL, _ = b.signer.URL(b.srv.URL, ev.RunID+".tar.gz", time.Hour)
	e.s.deploy(context.Background(), ev)
	if r := e.run(ev.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	if fetches != 0 {
		t.Error("the deployer fetched an artifact in the directory it shares with the builder")
	}
	if _, err := os.Stat(ev.ArtifactPath); err != nil {
		t.Errorf("the builder's file was removed: %v", err)
	}

	e.s.cfg.ArtifactDir = filepath.Join(e.dir, "deployer-own-artifacts")
	ev = e.built("elsewhere")
	data, err := os.ReadFile(ev.ArtifactPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.store.Put(context.Background(), ev.RunID+".tar.gz", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ev.ArtifactURL, _ = b.signer.URL(b.srv.URL, ev.RunID+".tar.gz", time.Hour)
	e.s.deploy(context.Background(), ev)
	if r := e.run(ev.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("run = %s %q", r.Status, r.Error)
	}
	if fetches != 1 {
		t.Errorf("%d fetches of an artifact outside the shared directory, want 1", fetches)
	}
	if _, html := e.current(); html != "elsewhere" {
		t.Errorf("current/index.html = %q", html)
	}
}

func logText(t *testing.T, e *env, id string) string {
	t.Helper()
	lines, err := runlog.Read(context.Background(), e.db.DB, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}
