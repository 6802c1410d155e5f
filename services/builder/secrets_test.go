package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/secret"
)

// syncBuffer collects the builder's slog output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testKeyring(t *testing.T) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startLogged runs a builder whose slog output (debug and up) goes to the returned buffer.
func (e *env) startLogged(cfg Config, co coord.Coordinator) (*builder, *syncBuffer) {
	e.t.Helper()
	out := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, e.db, e.bus, co, log, e.relay.Kick)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &builder{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- s.Run(ctx) }()
	e.t.Cleanup(func() { b.stop(e.t) })
	return b, out
}

// setSecret stores a build secret of project pid the way the gateway does: sealed for its
// row.
func (e *env) setSecret(keys *secret.Keyring, pid, name, value string) {
	e.t.Helper()
	id := ids.New()
	sealed, err := keys.Seal([]byte(value), secret.BuildSecretPlace(id))
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	e.exec(`INSERT INTO project_secrets (id, project_id, name, value_sealed, created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, 'alice')`,
		id, pid, name, sealed, now, now)
}

// A real build whose stage echoes its secrets: the stage gets the secrets it declares and
// no other stage does; the run log shows **** where the values were — also a multi-line
// value and one written in pieces — and no value appears in the log, the run's row, the
// manifest or the builder's own log.
func TestBuildSecretsReachTheirStageAndAreMasked(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		keys := testKeyring(t)
		const token = "tok_9f8e7d6c5b4a"
		const cert = "-----BEGIN TEST KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASC\n-----END TEST KEY-----"
		e.buildProject("p1", "static", ".", "s1", nil)
		e.setSecret(keys, "p1", "API_TOKEN", token)
		e.setSecret(keys, "p1", "SIGNING_KEY", cert)
		e.setSecret(keys, "p1", "UNUSED", "unused-secret-value")
		e.repo.commit("main", map[string]string{
			".fabu.yml": `stages:
  - name: show
    run: sh show.sh
    secrets: [API_TOKEN, SIGNING_KEY]
  - name: other
    run: sh other.sh
artifact: {dir: out}
`,
			// printf is a builtin: every call is its own write, so the token reaches the
			// log in two pieces.
			"show.sh": `echo "token=$API_TOKEN"
printf 'in pieces: %s' "$(echo "$API_TOKEN" | cut -c1-6)"
printf '%s\n' "$(echo "$API_TOKEN" | cut -c7-)"
echo "key follows:"
printf '%s\n' "$SIGNING_KEY"
echo "unused=[${UNUSED:-not given}]"
mkdir -p out && echo ok > out/index.html
`,
			"other.sh": "echo \"other stage sees [${API_TOKEN:-nothing}]\"\n",
		})
		cfg := e.config("")
		cfg.Secrets = keys
		_, slogOut := e.startLogged(cfg, e.co)

		id, r := e.buildAndDeploy("p1", "main")
		log := e.logOf(id)
		for _, want := range []string{"token=****", "in pieces: ****", "key follows:\n****\n****\n****\n", "unused=[not given]",
			"other stage sees [nothing]", "secrets: API_TOKEN, SIGNING_KEY"} {
			if !strings.Contains(log, want) {
				t.Errorf("run log lacks %q:\n%s", want, log)
			}
		}
		var manifest string
		if err := e.db.Raw("SELECT artifact_manifest FROM runs WHERE id = ?", id).Scan(&manifest).Error; err != nil {
			t.Fatal(err)
		}
		everything := map[string]string{"run log": log, "builder slog": slogOut.String(), "run error": r.Error, "manifest": manifest}
		for where, text := range everything {
			for _, v := range []string{token, "tok_9f", "8e7d6c5b4a", "MIIBVwIBADANBgkqhkiG9w0BAQEFAASC", "unused-secret-value"} {
				if strings.Contains(text, v) {
					t.Errorf("%s contains secret text %q", where, v)
				}
			}
		}
	})
}

// A stage declaring a secret the project does not have fails the run before any stage
// runs, naming the stage and the secret.
func TestUnknownSecretFailsTheRunAtOnce(t *testing.T) {
	e := newEnv(t, backends[0])
	keys := testKeyring(t)
	e.buildProject("p1", "static", ".", "s1", nil)
	e.setSecret(keys, "p1", "KNOWN", "known-secret-value")
	e.repo.commit("main", map[string]string{
		".fabu.yml": "stages:\n  - {name: first, run: [echo, hi]}\n  - {name: deploy-key, run: [echo, x], secrets: [KNOWN, MISSING_ONE]}\nartifact: {dir: .}\n",
	})
	cfg := e.config("")
	cfg.Secrets = keys
	e.start(cfg, e.co)
	id := e.request("p1", "main")
	var r runs.Run
	eventually(t, 15*time.Second, "the run to fail", func() bool { r = e.run(id); return r.Status.Final() })
	if r.Status != runs.StatusFailed || !strings.Contains(r.Error, "stage deploy-key declares the secret MISSING_ONE, which the project does not have") {
		t.Errorf("run = %s %q, want failed naming MISSING_ONE", r.Status, r.Error)
	}
	if rows := e.stagesOf(id); len(rows) != 0 {
		t.Errorf("stages ran: %+v", rows)
	}
}

// A project with secrets cannot build on a builder without the master key: the run fails
// saying so, rather than running the stages without them.
func TestSecretsWithoutMasterKeyFailTheRun(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", ".", "s1", nil)
	e.setSecret(testKeyring(t), "p1", "TOKEN", "some-secret-value")
	e.repo.commit("main", map[string]string{"index.html": "x"})
	e.start(e.config(""), e.co)
	id := e.request("p1", "main")
	var r runs.Run
	eventually(t, 15*time.Second, "the run to fail", func() bool { r = e.run(id); return r.Status.Final() })
	if r.Status != runs.StatusFailed || !strings.Contains(r.Error, "no master key") {
		t.Errorf("run = %s %q, want failed for the missing master key", r.Status, r.Error)
	}
}

// The values of declared secrets decide the artifact too: a project of the same commit
// with other values builds again; one with the same values reuses the artifact.
func TestSecretValuesSplitTheFingerprint(t *testing.T) {
	e := newEnv(t, backends[0])
	keys := testKeyring(t)
	pipeline := "stages:\n  - {name: bake, run: sh bake.sh, secrets: [API_URL]}\nartifact: {dir: out}\n"
	e.repo.commit("main", map[string]string{".fabu.yml": pipeline, "bake.sh": "mkdir -p out && echo \"$API_URL\" | wc -c > out/len\n"})
	for pid, v := range map[string]string{"p1": "https://test.example", "p2": "https://production.example", "p3": "https://test.example"} {
		e.buildProject(pid, "static", ".", "s1", nil)
		e.setSecret(keys, pid, "API_URL", v)
	}
	cfg := e.config("")
	cfg.Secrets = keys
	e.start(cfg, e.co)
	_, r1 := e.buildAndDeploy("p1", "main")
	id2, _ := e.buildAndDeploy("p2", "main")
	if log := e.logOf(id2); strings.Contains(log, "reusing the artifact") {
		t.Errorf("a project with another secret value reused the artifact:\n%s", log)
	}
	id3, r3 := e.buildAndDeploy("p3", "main")
	if log := e.logOf(id3); !strings.Contains(log, "reusing the artifact") || r3.ArtifactSHA256 != r1.ArtifactSHA256 {
		t.Errorf("a project with the same secret value built again (sha256 %s, first %s):\n%s", r3.ArtifactSHA256, r1.ArtifactSHA256, log)
	}
}

// Every artifact has a manifest beside it and on its run, announced in RunBuilt by its
// sha256; a run that reuses an artifact gets a manifest of its own naming the run that
// built it.
func TestArtifactManifest(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", "site", "s1", nil)
	commit := e.repo.commit("main", map[string]string{"site/index.html": "<h1>hi</h1>", "site/js/app.js": "run()"})
	cfg := e.config("")
	cfg.Version = "1.2.3-test"
	e.start(cfg, e.co)

	check := func(id, ref string) artifact.BuildManifest {
		t.Helper()
		r := e.waitStatus(id, runs.StatusDeploying)
		ev := e.builtEvent(id)
		data, err := os.ReadFile(artifact.ManifestPath(r.ArtifactPath))
		if err != nil {
			t.Fatalf("manifest beside the artifact: %v", err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ev.ManifestSHA256 {
			t.Errorf("RunBuilt announces manifest sha256 %s, the file has %x", ev.ManifestSHA256, sum)
		}
		var stored string
		if err := e.db.Raw("SELECT artifact_manifest FROM runs WHERE id = ?", id).Scan(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if stored != string(data) {
			t.Errorf("runs.artifact_manifest differs from the file:\n%s\n%s", stored, data)
		}
		m, err := artifact.ParseManifest(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := artifact.VerifyArchive(context.Background(), m, r.ArtifactPath); err != nil {
			t.Errorf("the artifact does not match its manifest: %v", err)
		}
		if m.RunID != id || m.Commit != commit || m.Ref != ref || m.Project.Name != "app-p1" || m.Recipe != "static" ||
			m.BuilderVersion != "1.2.3-test" || m.Artifact.SHA256 != r.ArtifactSHA256 || len(m.Fingerprint) != 64 || m.BuiltAt.IsZero() {
			t.Errorf("manifest = %+v", m)
		}
		if m.FileCount != 2 || m.TotalSize != int64(len("<h1>hi</h1>")+len("run()")) || m.Files[0].Path != "index.html" || m.Files[1].Path != "js/app.js" {
			t.Errorf("manifest files = %+v (count %d, size %d)", m.Files, m.FileCount, m.TotalSize)
		}
		e.deployed(ev)
		e.waitStatus(id, runs.StatusSucceeded)
		return m
	}
	first := e.request("p1", "main")
	m1 := check(first, "main")
	if m1.ReusedFrom != "" {
		t.Errorf("a built artifact's manifest says it was reused from %q", m1.ReusedFrom)
	}
	m2 := check(e.request("p1", commit), commit)
	if m2.ReusedFrom != first || m2.Fingerprint != m1.Fingerprint {
		t.Errorf("reused artifact's manifest: reused_from %q, fingerprint %s; want %s and %s", m2.ReusedFrom, m2.Fingerprint, first, m1.Fingerprint)
	}
}
