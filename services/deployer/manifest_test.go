package deployer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
)

// withManifest writes the manifest of ev's artifact beside it, as the builder does, after
// edit changes it, and announces its sha256 in ev.
func (e *env) withManifest(ev *events.RunBuilt, edit func(*artifact.BuildManifest)) []byte {
	e.t.Helper()
	f, err := os.Open(ev.ArtifactPath)
	if err != nil {
		e.t.Fatal(err)
	}
	files, err := artifact.ListArchive(context.Background(), f)
	f.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	fi, err := os.Stat(ev.ArtifactPath)
	if err != nil {
		e.t.Fatal(err)
	}
	m := artifact.BuildManifest{Format: artifact.ManifestFormat, RunID: ev.RunID, Project: artifact.ManifestProject{ID: "p1", Name: "shop"},
		Commit: ev.Commit, Ref: "main", Recipe: "static", Fingerprint: strings.Repeat("f", 64), Kind: "dir",
		BuiltAt: time.Now().UTC(), BuilderVersion: "test",
		Artifact: artifact.ArchiveInfo{Name: filepath.Base(ev.ArtifactPath), Format: "tar.gz", Size: fi.Size(), SHA256: ev.ArtifactSHA256}}
	m.SetFiles(files)
	if edit != nil {
		edit(&m)
	}
	data, err := m.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(artifact.ManifestPath(ev.ArtifactPath), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ev.ManifestSHA256 = hex.EncodeToString(sum[:])
	return data
}

// The deployer checks the manifest before anything reaches a server: a manifest changed
// after the build, one that does not describe the artifact, or a replaced artifact fails
// the run with its reason and leaves every server as it was.
func TestDeployVerifiesTheManifest(t *testing.T) {
	e := newEnv(t)
	e.s.cfg.ArtifactDir = e.dir // shared with the "builder": e.built packs there

	good := e.built("with manifest")
	e.withManifest(&good, nil)
	e.s.deploy(context.Background(), good)
	if r := e.run(good.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("deploy with a good manifest = %s %q\n%s", r.Status, r.Error, logText(t, e, good.RunID))
	}
	if log := logText(t, e, good.RunID); !strings.Contains(log, "manifest verified: 1 files") {
		t.Errorf("log does not tell of the verified manifest:\n%s", log)
	}

	tests := []struct {
		name    string
		prepare func(ev *events.RunBuilt)
		wantErr string
	}{
		{"manifest edited after the build", func(ev *events.RunBuilt) {
			e.withManifest(ev, nil)
			announced := ev.ManifestSHA256
			e.withManifest(ev, func(m *artifact.BuildManifest) { m.Files[0].SHA256 = strings.Repeat("0", 64) })
			ev.ManifestSHA256 = announced
		}, "the manifest was changed after the build"},
		{"manifest does not list the artifact's files", func(ev *events.RunBuilt) {
			e.withManifest(ev, func(m *artifact.BuildManifest) {
				m.SetFiles(append(m.Files, artifact.File{Path: "evil.sh", Size: 4, Mode: "0755", SHA256: strings.Repeat("1", 64)}))
			})
		}, "artifact does not match its manifest: evil.sh is in the manifest but not in the artifact"},
		{"file hash in the manifest differs", func(ev *events.RunBuilt) {
			e.withManifest(ev, func(m *artifact.BuildManifest) { m.Files[0].SHA256 = strings.Repeat("0", 64) })
		}, "index.html has sha256"},
		{"artifact replaced", func(ev *events.RunBuilt) {
			e.withManifest(ev, nil)
			other := e.built("replacement")
			data, err := os.ReadFile(other.ArtifactPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ev.ArtifactPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "artifact checksum"},
		{"artifact and manifest replaced together", func(ev *events.RunBuilt) {
			e.withManifest(ev, nil)
			other := e.built("replacement")
			data, err := os.ReadFile(other.ArtifactPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ev.ArtifactPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			announced := *ev
			ev.ArtifactSHA256 = other.ArtifactSHA256
			e.withManifest(ev, nil) // consistent with the replacement …
			ev.ArtifactSHA256 = announced.ArtifactSHA256
			ev.ManifestSHA256 = announced.ManifestSHA256 // … but not with what was announced
		}, "artifact checksum"},
		{"manifest names the wrong artifact", func(ev *events.RunBuilt) {
			e.withManifest(ev, func(m *artifact.BuildManifest) { m.Artifact.SHA256 = strings.Repeat("a", 64) })
		}, "the manifest names artifact sha256 " + strings.Repeat("a", 64)},
		{"manifest of another run", func(ev *events.RunBuilt) {
			e.withManifest(ev, func(m *artifact.BuildManifest) { m.RunID = "someone-else" })
		}, "the manifest is run someone-else's"},
		{"manifest missing", func(ev *events.RunBuilt) {
			e.withManifest(ev, nil)
			if err := os.Remove(artifact.ManifestPath(ev.ArtifactPath)); err != nil {
				t.Fatal(err)
			}
		}, "read the artifact's manifest"},
		{"manifest not JSON", func(ev *events.RunBuilt) {
			data := []byte("not json")
			if err := os.WriteFile(artifact.ManifestPath(ev.ArtifactPath), data, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			ev.ManifestSHA256 = hex.EncodeToString(sum[:])
		}, "manifest: manifest is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := e.built("bad " + tt.name)
			tt.prepare(&ev)
			e.s.deploy(context.Background(), ev)
			r := e.run(ev.RunID)
			if r.Status != runs.StatusFailed || !strings.Contains(r.Error, tt.wantErr) {
				t.Errorf("run = %s %q, want failed with %q", r.Status, r.Error, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(e.path, "releases", ev.RunID)); !os.IsNotExist(err) {
				t.Errorf("release directory exists on the target: %v", err)
			}
			if rel, _ := e.current(); rel != good.RunID {
				t.Errorf("current = %s, want %s kept", rel, good.RunID)
			}
			if !e.lockFree(ev) {
				t.Error("lock still held after the failed run")
			}
		})
	}
}

// A deployer on another machine fetches the manifest from its signed URL beside the
// artifact and verifies it the same way.
func TestDeployFetchesAndVerifiesTheManifest(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	e := newEnv(t)
	b := newBuilderSide(t)
	publish := func(ev *events.RunBuilt, manifest []byte) {
		t.Helper()
		name := artifact.ManifestName(ev.RunID + ".tar.gz")
		if err := b.store.Delete(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.store.Put(context.Background(), name, bytes.NewReader(manifest)); err != nil {
			t.Fatal(err)
		}
		u, err := b.signer.URL(b.srv.URL, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ev.ManifestURL = u
	}

	good := e.built("fetched with manifest")
	manifest := e.withManifest(&good, nil)
	b.remote(t, &good)
	publish(&good, manifest)
	e.s.deploy(context.Background(), good)
	if r := e.run(good.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("deploy = %s %q\n%s", r.Status, r.Error, logText(t, e, good.RunID))
	}
	if _, html := e.current(); html != "fetched with manifest" {
		t.Errorf("current/index.html = %q", html)
	}

	bad := e.built("tampered on the builder")
	manifest = e.withManifest(&bad, nil)
	b.remote(t, &bad)
	publish(&bad, bytes.Replace(manifest, []byte(`"ref": "main"`), []byte(`"ref": "evil"`), 1))
	e.s.deploy(context.Background(), bad)
	if r := e.run(bad.RunID); r.Status != runs.StatusFailed || !strings.Contains(r.Error, "the manifest was changed after the build") {
		t.Errorf("run with a tampered manifest = %s %q", r.Status, r.Error)
	}

	noURL := e.built("no manifest URL")
	e.withManifest(&noURL, nil)
	b.remote(t, &noURL)
	e.s.deploy(context.Background(), noURL)
	if r := e.run(noURL.RunID); r.Status != runs.StatusFailed || !strings.Contains(r.Error, "no URL to fetch it from") {
		t.Errorf("run without a manifest URL = %s %q", r.Status, r.Error)
	}
	if rel, _ := e.current(); rel != good.RunID {
		t.Errorf("current = %s, want %s kept", rel, good.RunID)
	}
}
