package builder

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/bus"
	busmem "fabu.dev/libs/bus/memory"
	"fabu.dev/libs/bus/outbox"
	"fabu.dev/libs/coord"
	coordmem "fabu.dev/libs/coord/memory"
	coordredis "fabu.dev/libs/coord/redis"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/libs/testenv"
)

// backend is one combination of database and coordinator the builder runs on. Every
// scenario runs on both, so SQLite+memory (fabu up) and PostgreSQL+Redis (a cluster) must
// behave the same.
type backend struct {
	name   string
	driver string
	redis  bool
}

var backends = []backend{
	{"sqlite+memory", store.SQLite, false},
	{"postgres+redis", store.Postgres, true},
}

// forEach runs f as a subtest per backend, in parallel.
func forEach(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// newCoord returns a fresh coordinator of b's kind. Redis coordinators made by one test share
// a prefix, so a second one sees the first one's state, like a restarted builder would.
func newCoord(t *testing.T, b backend, prefix string) coord.Coordinator {
	t.Helper()
	if !b.redis {
		return coordmem.New()
	}
	return coordredis.New(coordredis.Config{Client: testenv.Redis(t), Prefix: prefix})
}

func gitTest(t testing.TB, dir string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "user.name=fabu test", "-c", "user.email=test@fabu.dev",
		"-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// repo is a bare repository (the project's git URL) with a working clone that pushes to it.
type repo struct {
	t    testing.TB
	bare string
	work string
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	dir := t.TempDir()
	r := &repo{t: t, bare: filepath.Join(dir, "site.git"), work: filepath.Join(dir, "work")}
	gitTest(t, dir, "init", "-q", "--bare", "-b", "main", r.bare)
	gitTest(t, dir, "clone", "-q", r.bare, r.work)
	gitTest(t, r.work, "checkout", "-q", "-b", "main")
	return r
}

// commit writes files and pushes a commit to branch; it returns the commit id.
func (r *repo) commit(branch string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	gitTest(r.t, r.work, "add", "-A")
	gitTest(r.t, r.work, "commit", "-q", "-m", "change "+branch)
	gitTest(r.t, r.work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return gitTest(r.t, r.work, "rev-parse", "HEAD")
}

// env is a builder's world: a database, the in-process bus with an outbox relay, a
// coordinator, a git repository and the RunBuilt events seen on the bus.
type env struct {
	t     *testing.T
	b     backend
	db    *store.DB
	bus   *busmem.Bus
	relay *outbox.Relay
	co    coord.Coordinator
	repo  *repo
	dir   string
	redis string // key prefix shared by this test's Redis coordinators

	mu    sync.Mutex
	built map[string]events.RunBuilt
	// The stand-in deployer: it keeps each built run's lease and heartbeat alive, as the
	// deployer does while it deploys, until deployed ends the run. deployCo is the
	// coordinator of the builder that handed the run over.
	deployCo coord.Coordinator
	holding  map[string]context.CancelFunc
}

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	e := &env{t: t, b: b, db: storetest.Open(t, b.driver), bus: busmem.New(busmem.Config{}),
		repo: newRepo(t), dir: t.TempDir(), built: map[string]events.RunBuilt{}, holding: map[string]context.CancelFunc{}}
	if b.redis {
		e.redis = testenv.RedisPrefix(t)
	}
	e.co = newCoord(t, b, e.redis)
	e.relay = &outbox.Relay{DB: e.db.DB, Publisher: e.bus, Interval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.relay.Run(ctx) }()
	go func() {
		defer wg.Done()
		_ = e.bus.Subscribe(ctx, events.TopicRunBuilt, "test", func(_ context.Context, m bus.Message) error {
			var ev events.RunBuilt
			if err := events.Decode(m, &ev); err != nil {
				return err
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.built[ev.RunID] = ev
			if _, ok := e.holding[ev.RunID]; !ok && e.deployCo != nil {
				hctx, stop := context.WithCancel(ctx)
				e.holding[ev.RunID] = stop
				wg.Add(1)
				go func() { defer wg.Done(); e.hold(hctx, e.deployCo, ev) }()
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = e.bus.Close()
	})
	now := time.Now().UTC()
	e.exec(`INSERT INTO servers (id, name, host, port, ssh_user, created_at, updated_at) VALUES ('s1', 'web-1', '10.0.0.1', 22, 'root', ?, ?)`, now, now)
	e.exec(`INSERT INTO servers (id, name, host, port, ssh_user, created_at, updated_at) VALUES ('s2', 'web-2', '10.0.0.2', 22, 'root', ?, ?)`, now, now)
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if err := e.db.Exec(sql, args...).Error; err != nil {
		e.t.Fatal(err)
	}
}

// project inserts a static project of e's repository that deploys sourceDir to server.
func (e *env) project(id, sourceDir, server string) {
	e.t.Helper()
	now := time.Now().UTC()
	e.exec(`INSERT INTO projects (id, name, git_url, platform, namespace, type, source_dir, branch, deploy_path, created_at, updated_at)
		VALUES (?, ?, ?, 'gitlab', 'team', 'static', ?, 'main', '/srv/app', ?, ?)`, id, "app-"+id, e.repo.bare, sourceDir, now, now)
	e.exec(`INSERT INTO project_servers (project_id, server_id) VALUES (?, ?)`, id, server)
}

// request asks for a run of project at ref the way the gateway does, and kicks the relay.
func (e *env) request(project, ref string) string {
	e.t.Helper()
	r := runs.Run{ProjectID: project, Ref: ref, Trigger: "manual", TriggeredBy: "alice"}
	if err := e.db.Tx(context.Background(), func(tx *gorm.DB) error { return runs.Request(tx, &r) }); err != nil {
		e.t.Fatal(err)
	}
	e.relay.Kick()
	return r.ID
}

func (e *env) config(git string) Config {
	return Config{WorkspaceDir: filepath.Join(e.dir, "ws"), ArtifactDir: filepath.Join(e.dir, "artifacts"), Git: git,
		LockTTL: 3 * time.Second, HeartbeatEvery: 100 * time.Millisecond, StaleAfter: 2 * time.Second, SweepEvery: 100 * time.Millisecond}
}

// builder is one running builder instance.
type builder struct {
	s      *Service
	cancel context.CancelFunc
	done   chan error
}

// start runs a builder on e with cfg and coordinator co until stop or the end of the test.
func (e *env) start(cfg Config, co coord.Coordinator) *builder {
	e.t.Helper()
	s, err := New(cfg, e.db, e.bus, co, slog.New(slog.NewTextHandler(io.Discard, nil)), e.relay.Kick)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.deployCo = co
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	b := &builder{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- s.Run(ctx) }()
	e.t.Cleanup(func() { b.stop(e.t) })
	return b
}

// stop cancels the builder and waits until Run has returned, in-flight builds included.
func (b *builder) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	select {
	case err, ok := <-b.done:
		if ok && err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("builder Run: %v", err)
		}
		if ok {
			close(b.done)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("builder did not stop within 15s")
	}
}

func (e *env) run(id string) runs.Run {
	e.t.Helper()
	r, err := runs.Get(e.db.DB, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

// waitStatus waits until run id has status want and returns it; a different final status
// ends the wait at once.
func (e *env) waitStatus(id string, want runs.Status) runs.Run {
	e.t.Helper()
	var r runs.Run
	eventually(e.t, 15*time.Second, "run "+id+" "+string(want), func() bool {
		r = e.run(id)
		if r.Status != want && r.Status.Final() {
			e.t.Fatalf("run %s ended %s (%q), want %s", id, r.Status, r.Error, want)
		}
		return r.Status == want
	})
	return r
}

// builtEvent waits for run id's RunBuilt event on the bus.
func (e *env) builtEvent(id string) events.RunBuilt {
	e.t.Helper()
	var ev events.RunBuilt
	eventually(e.t, 10*time.Second, "RunBuilt of "+id, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		var ok bool
		ev, ok = e.built[id]
		return ok
	})
	return ev
}

// deployed plays the deployer: it finishes run id as succeeded under the lease in ev, frees
// the lock and kicks the relay, so RunFinished reaches the builder.
func (e *env) deployed(ev events.RunBuilt) {
	e.t.Helper()
	e.mu.Lock()
	if stop := e.holding[ev.RunID]; stop != nil {
		stop()
	}
	e.mu.Unlock()
	r := e.run(ev.RunID)
	err := e.db.Tx(context.Background(), func(tx *gorm.DB) error {
		return runs.Finish(tx, r, []runs.Status{runs.StatusDeploying}, runs.StatusSucceeded, "", ev.LockToken)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.co.Release(context.Background(), coord.Lease{Key: ev.LockKey, Owner: ev.RunID, Token: ev.LockToken}); err != nil {
		e.t.Fatalf("release the run's lease: %v", err)
	}
	e.relay.Kick()
}

// hold renews built run ev's lease and heartbeats it until ctx ends or the run is no
// longer deploying under that lease, the way the deployer holds a run it deploys. Without
// it a run left deploying while a test looks at it goes stale (StaleAfter) and loses its
// lock (LockTTL) as soon as the machine is slow enough.
func (e *env) hold(ctx context.Context, co coord.Coordinator, ev events.RunBuilt) {
	lease := coord.Lease{Key: ev.LockKey, Owner: ev.RunID, Token: ev.LockToken}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		renewed, err := co.Renew(ctx, lease, 3*time.Second)
		if err != nil {
			return
		}
		lease = renewed
		if ok, err := runs.Heartbeat(e.db.WithContext(ctx), ev.RunID, lease.Token, -1); err == nil && !ok {
			return
		}
	}
}

// lockFree reports whether key can be taken now.
func lockFree(t *testing.T, co coord.Coordinator, key string) bool {
	t.Helper()
	l, err := co.Acquire(context.Background(), key, "probe", time.Second)
	if errors.Is(err, coord.ErrLocked) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Release(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return true
}

// keyOf returns project id's conflict key as the builder computes it.
func (e *env) keyOf(s *Service, id string) string {
	e.t.Helper()
	p, ts, err := s.loadProject(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return conflictKey(p, ts)
}

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "git")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func realGit(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
