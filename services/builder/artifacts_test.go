package builder

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store/storetest"
)

var testKey = bytes.Repeat([]byte("artifact signing key "), 2)

// A built run's event carries a signed URL at which the builder's handler serves exactly
// the artifact; the URL only works as signed.
func TestBuildAnnouncesSignedArtifactURL(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		h := http.NotFoundHandler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		defer srv.Close()

		bl := e.start(e.config(""), e.co)
		a, err := bl.s.ServeArtifacts(ArtifactConfig{BaseURL: srv.URL, Keys: [][]byte{testKey}, URLTTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h = a.Handler()

		id := e.request("p1", "main")
		e.waitStatus(id, runs.StatusDeploying)
		ev := e.builtEvent(id)
		if !strings.HasPrefix(ev.ArtifactURL, srv.URL+artifact.RoutePrefix+id+".tar.gz?") {
			t.Fatalf("ArtifactURL = %q", ev.ArtifactURL)
		}
		want, err := os.ReadFile(ev.ArtifactPath)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		sum, _, err := artifact.Fetch(context.Background(), http.DefaultClient, ev.ArtifactURL, &got)
		if err != nil || sum != ev.ArtifactSHA256 || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("fetching the announced URL: sha %s, %v; want the artifact (sha %s)", sum, err, ev.ArtifactSHA256)
		}
		unsigned := strings.SplitN(ev.ArtifactURL, "?", 2)[0]
		resp, err := http.Get(unsigned)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned GET = %d, want 403", resp.StatusCode)
		}
		e.deployed(ev)
	})
}

func TestArtifactConfigValidation(t *testing.T) {
	e := &Service{cfg: Config{ArtifactDir: t.TempDir()}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for name, cfg := range map[string]ArtifactConfig{
		"URL without keys":   {BaseURL: "http://builder:8080"},
		"short key":          {BaseURL: "http://builder:8080", Keys: [][]byte{[]byte("short")}},
		"not an http URL":    {BaseURL: "builder:8080", Keys: [][]byte{testKey}},
		"negative URL ttl":   {Keys: [][]byte{testKey}, URLTTL: -time.Second},
		"negative frequency": {RetentionEvery: -time.Hour},
	} {
		if _, err := e.ServeArtifacts(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without a base URL a builder announces no URL, and serves nothing without keys.
	a, err := e.ServeArtifacts(ArtifactConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if u := e.artifactURL(filepath.Join(e.cfg.ArtifactDir, "01R.tar.gz")); u != "" {
		t.Errorf("artifactURL without a base URL = %q", u)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", artifact.RoutePrefix+"01R.tar.gz?expires=9999999999&sig=00", nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("GET from a builder without keys = %d, want 403", rec.Code)
	}
	if _, err := e.ServeArtifacts(ArtifactConfig{BaseURL: "http://b:1", Keys: [][]byte{testKey}}); err != nil {
		t.Fatal(err)
	}
	if u := e.artifactURL("/elsewhere/01R.tar.gz"); u != "" {
		t.Errorf("artifactURL of a file outside the store = %q", u)
	}
}

// Retention deletes old artifacts except those of each project's latest succeeded run, of
// runs in flight, and of runs created within the retention period.
func TestArtifactRetention(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	type run struct {
		id, project string
		status      runs.Status
		age         time.Duration // created this long before now
		finished    time.Duration // finished this long before now (succeeded, failed)
		artifact    string        // artifact_path's base name; "" for none
	}
	type file struct {
		name string
		age  time.Duration
	}
	tests := []struct {
		name      string
		runs      []run
		files     []file
		retention time.Duration
		deleted   []string
	}{
		{
			name: "old artifacts go, the latest success of each project stays",
			runs: []run{
				{"r1", "p1", runs.StatusSucceeded, 60 * day, 60 * day, "r1.tar.gz"},
				{"r2", "p1", runs.StatusSucceeded, 50 * day, 50 * day, "r2.tar.gz"},
				{"r3", "p1", runs.StatusFailed, 45 * day, 45 * day, "r3.tar.gz"},
				{"r4", "p2", runs.StatusSucceeded, 40 * day, 40 * day, "r4.tar.gz"},
			},
			files:   []file{{"r1.tar.gz", 60 * day}, {"r2.tar.gz", 50 * day}, {"r3.tar.gz", 45 * day}, {"r4.tar.gz", 40 * day}},
			deleted: []string{"r1.tar.gz", "r3.tar.gz"},
		},
		{
			name: "a later failure does not make an older success disposable",
			runs: []run{
				{"r1", "p1", runs.StatusSucceeded, 60 * day, 60 * day, "r1.tar.gz"},
				{"r2", "p1", runs.StatusFailed, 1 * day, 1 * day, "r2.tar.gz"},
			},
			files: []file{{"r1.tar.gz", 60 * day}, {"r2.tar.gz", 1 * day}},
		},
		{
			name: "a newer success retires the old one's artifact",
			runs: []run{
				{"r1", "p1", runs.StatusSucceeded, 60 * day, 60 * day, "r1.tar.gz"},
				{"r2", "p1", runs.StatusSucceeded, 2 * day, 2 * day, "r2.tar.gz"},
			},
			files:   []file{{"r1.tar.gz", 60 * day}, {"r2.tar.gz", 2 * day}},
			deleted: []string{"r1.tar.gz"},
		},
		{
			name: "runs in flight keep theirs, however old the file",
			runs: []run{
				{"r1", "p1", runs.StatusDeploying, 40 * day, 0, "r1.tar.gz"},
				{"r2", "p2", runs.StatusBuilding, 40 * day, 0, ""},
			},
			files: []file{{"r1.tar.gz", 40 * day}, {"r2.tar.gz", 40 * day}},
		},
		{
			name: "a reused artifact keeps the old file time but belongs to a new run",
			runs: []run{
				{"r1", "p1", runs.StatusSucceeded, 3 * day, 3 * day, "r1.tar.gz"},
				{"r2", "p1", runs.StatusSucceeded, 1 * day, 1 * day, "r2.tar.gz"},
			},
			files: []file{{"r1.tar.gz", 90 * day}, {"r2.tar.gz", 90 * day}},
		},
		{
			name:    "orphans and unknown files go when old, temporaries are not touched",
			files:   []file{{"orphan.tar.gz", 31 * day}, {"young.tar.gz", 29 * day}, {".r9.tar.gz.tmp-1", 90 * day}},
			deleted: []string{"orphan.tar.gz"},
		},
		{
			name: "manifests go and stay with their artifacts",
			runs: []run{
				{"r1", "p1", runs.StatusSucceeded, 60 * day, 60 * day, "r1.tar.gz"},
				{"r2", "p1", runs.StatusSucceeded, 50 * day, 50 * day, "r2.tar.gz"},
			},
			files: []file{{"r1.tar.gz", 60 * day}, {"r1.tar.gz.manifest.json", 60 * day}, {"r2.tar.gz", 50 * day},
				{"r2.tar.gz.manifest.json", 50 * day}, {"gone.tar.gz.manifest.json", 40 * day}},
			deleted: []string{"gone.tar.gz.manifest.json", "r1.tar.gz", "r1.tar.gz.manifest.json"},
		},
		{
			name:      "a shorter retention",
			runs:      []run{{"r1", "p1", runs.StatusFailed, 3 * day, 3 * day, "r1.tar.gz"}},
			files:     []file{{"r1.tar.gz", 3 * day}, {"r0.tar.gz", 3 * day}},
			retention: 2 * day,
			deleted:   []string{"r0.tar.gz", "r1.tar.gz"},
		},
		{
			name:      "negative retention keeps everything",
			files:     []file{{"r0.tar.gz", 900 * day}},
			retention: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := storetest.Open(t, "sqlite")
			dir := filepath.Join(t.TempDir(), "artifacts")
			if err := os.MkdirAll(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"p1", "p2"} {
				if err := db.Exec(`INSERT INTO projects (id, name, git_url, type, deploy_path, created_at, updated_at) VALUES (?, ?, 'x', 'static', '/srv/app', ?, ?)`,
					p, "app-"+p, now, now).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range tt.runs {
				path := ""
				if r.artifact != "" {
					path = filepath.Join(dir, r.artifact)
				}
				var finished *time.Time
				if r.finished > 0 {
					f := now.Add(-r.finished)
					finished = &f
				}
				row := runs.Run{ID: r.id, ProjectID: r.project, Ref: "main", Status: r.status, Trigger: "manual",
					ArtifactPath: path, CreatedAt: now.Add(-r.age), UpdatedAt: now, FinishedAt: finished}
				if err := db.Create(&row).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tt.files {
				p := filepath.Join(dir, f.name)
				if err := os.WriteFile(p, []byte(f.name), 0o640); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
					t.Fatal(err)
				}
			}
			s := &Service{cfg: Config{ArtifactDir: dir}, db: db, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			a, err := s.ServeArtifacts(ArtifactConfig{Retention: tt.retention})
			if err != nil {
				t.Fatal(err)
			}
			a.now = func() time.Time { return now }
			deleted, err := a.Prune(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(deleted)
			if !slices.Equal(deleted, tt.deleted) {
				t.Errorf("deleted %v, want %v", deleted, tt.deleted)
			}
			for _, f := range tt.files {
				_, err := os.Stat(filepath.Join(dir, f.name))
				if gone := os.IsNotExist(err); gone != slices.Contains(tt.deleted, f.name) {
					t.Errorf("%s: gone = %v (%v)", f.name, gone, err)
				}
			}
		})
	}
}
