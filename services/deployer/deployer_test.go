package deployer

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/coord"
	coordmem "fabu.dev/libs/coord/memory"
	"fabu.dev/libs/events"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/sshx/sshtest"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

type env struct {
	t     *testing.T
	db    *store.DB
	co    coord.Coordinator
	s     *Service
	sshd  *sshtest.Server
	path  string
	dir   string
	kicks int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db := storetest.Open(t, store.SQLite)
	var err error
	e := &env{t: t, db: db, co: coordmem.New(), sshd: sshtest.Start(t), path: filepath.Join(dir, "target", "app"), dir: dir}
	e.s, err = New(Config{KeyPath: filepath.Join(dir, "ssh", "id_ed25519"), LockTTL: 3 * time.Second, DialTimeout: 3 * time.Second},
		db, nil, e.co, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { e.kicks++ })
	if err != nil {
		t.Fatal(err)
	}
	e.sshd.Authorize(t, e.s.PublicKey())
	now := time.Now().UTC()
	e.exec(`INSERT INTO servers (id, name, host, port, ssh_user, host_key, created_at, updated_at) VALUES ('s1', 'web-1', '127.0.0.1', ?, 'root', ?, ?, ?)`,
		e.sshd.Port, e.sshd.HostKeyLine, now, now)
	e.exec(`INSERT INTO projects (id, name, git_url, type, source_dir, branch, deploy_path, keep_releases, created_at, updated_at)
		VALUES ('p1', 'shop', '/tmp/x.git', 'static', '.', 'main', ?, 3, ?, ?)`, e.path, now, now)
	e.exec(`INSERT INTO project_servers (project_id, server_id) VALUES ('p1', 's1')`)
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if err := e.db.Exec(sql, args...).Error; err != nil {
		e.t.Fatal(err)
	}
}

// built makes a run in status deploying that holds the target lock, with an artifact whose
// index.html says content, and returns the RunBuilt event the builder would send.
func (e *env) built(content string) events.RunBuilt {
	e.t.Helper()
	id := ids.New()
	src := filepath.Join(e.dir, "src-"+id)
	if err := os.MkdirAll(src, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	dest := filepath.Join(e.dir, id+".tar.gz")
	m, err := artifact.Pack(context.Background(), src, dest)
	if err != nil {
		e.t.Fatal(err)
	}
	lease, err := e.co.Acquire(context.Background(), "deploy:"+id, id, 3*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	e.exec(`INSERT INTO runs (id, project_id, ref, status, trigger, triggered_by, lock_token, heartbeat_at, created_at, updated_at)
		VALUES (?, 'p1', 'main', 'deploying', 'manual', 'alice', ?, ?, ?, ?)`, id, lease.Token, now, now, now)
	return events.RunBuilt{RunID: id, ProjectID: "p1", Commit: strings.Repeat("a", 40), ArtifactPath: dest,
		ArtifactSHA256: m.SHA256, LockKey: lease.Key, LockToken: lease.Token}
}

func (e *env) run(id string) runs.Run {
	e.t.Helper()
	r, err := runs.Get(e.db.DB, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) current() (string, string) {
	dest, err := os.Readlink(filepath.Join(e.path, "current"))
	if err != nil {
		return "", ""
	}
	b, _ := os.ReadFile(filepath.Join(e.path, "current", "index.html"))
	return filepath.Base(dest), string(b)
}

func (e *env) lockFree(ev events.RunBuilt) bool {
	l, err := e.co.Acquire(context.Background(), ev.LockKey, "probe", time.Second)
	if err != nil {
		return false
	}
	_ = e.co.Release(context.Background(), l)
	return true
}

func TestDeploySwitchesCurrentAndPrunes(t *testing.T) {
	e := newEnv(t)
	var all []string
	for i, v := range []string{"v1", "v2", "v3", "v4", "v5"} {
		ev := e.built(v)
		e.s.deploy(context.Background(), ev)
		r := e.run(ev.RunID)
		if r.Status != runs.StatusSucceeded || r.ReleaseID != ev.RunID || r.Progress != 100 {
			t.Fatalf("deploy %d: run = %+v", i, r)
		}
		if rel, html := e.current(); rel != ev.RunID || html != v {
			t.Fatalf("deploy %d: current = %s %q, want %s %q", i, rel, html, ev.RunID, v)
		}
		if !e.lockFree(ev) {
			t.Fatalf("deploy %d: lock still held after the run finished", i)
		}
		all = append(all, ev.RunID)
	}
	entries, err := os.ReadDir(filepath.Join(e.path, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if strings.Join(names, ",") != strings.Join(all[2:], ",") {
		t.Errorf("releases = %v, want the last 3 %v", names, all[2:])
	}
	for _, d := range []string{"shared", "run", ".fabu"} {
		if fi, err := os.Stat(filepath.Join(e.path, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s missing: %v", d, err)
		}
	}
	var n int64
	e.db.Table("outbox").Where("topic = ?", events.TopicRunFinished).Count(&n)
	if n != 5 {
		t.Errorf("finished events = %d, want 5", n)
	}
}

func TestFailedDeployKeepsCurrent(t *testing.T) {
	e := newEnv(t)
	good := e.built("good")
	e.s.deploy(context.Background(), good)
	if r := e.run(good.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("first deploy: %+v", r)
	}
	other := sshtest.Start(t) // a different host key than the one web-1 presents
	tests := []struct {
		name    string
		prepare func(ev *events.RunBuilt)
		wantErr string
	}{
		{"host key mismatch", func(*events.RunBuilt) {
			e.exec(`UPDATE servers SET host_key = ?`, strings.Replace(other.HostKeyLine, other.Addr, e.sshd.Addr, 1))
		}, "host key mismatch"},
		{"unreachable server", func(*events.RunBuilt) {
			e.exec(`UPDATE servers SET host_key = ?, port = 1`, e.sshd.HostKeyLine)
		}, "web-1"},
		{"artifact checksum differs", func(ev *events.RunBuilt) {
			e.exec(`UPDATE servers SET port = ?`, e.sshd.Port)
			ev.ArtifactSHA256 = strings.Repeat("0", 64)
		}, "checksum"},
		{"artifact gone", func(ev *events.RunBuilt) {
			os.Remove(ev.ArtifactPath)
		}, "artifact"},
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
			if rel, html := e.current(); rel != good.RunID || html != "good" {
				t.Errorf("current = %s %q, want the good release kept", rel, html)
			}
			if _, err := os.Stat(filepath.Join(e.path, "releases", ev.RunID)); !os.IsNotExist(err) {
				t.Errorf("failed release left on the target: %v", err)
			}
			if !e.lockFree(ev) {
				t.Error("lock still held after the failed run")
			}
		})
	}
}

func TestDeploySkipsRunNotWaiting(t *testing.T) {
	e := newEnv(t)
	ev := e.built("x")
	e.exec(`UPDATE runs SET status = 'cancelled' WHERE id = ?`, ev.RunID)
	e.s.deploy(context.Background(), ev)
	if rel, _ := e.current(); rel != "" {
		t.Errorf("a cancelled run was deployed: current = %s", rel)
	}
	// A stale event whose fencing token lost to a newer holder deploys nothing either.
	ev2 := e.built("y")
	ev2.LockToken--
	e.s.deploy(context.Background(), ev2)
	if rel, _ := e.current(); rel != "" {
		t.Errorf("a run with a stale token was deployed: current = %s", rel)
	}
}

// A cancel requested while the deploy is stuck (a server that accepts and never answers)
// stops it at the next heartbeat: the run ends cancelled, current stays, the lock is free.
func TestCancelledDeployKeepsCurrent(t *testing.T) {
	e := newEnv(t)
	e.s.cfg.HeartbeatEvery = 100 * time.Millisecond
	good := e.built("good")
	e.s.deploy(context.Background(), good)
	if r := e.run(good.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("first deploy: %+v", r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	e.exec(`UPDATE servers SET port = ?`, ln.Addr().(*net.TCPAddr).Port)
	ev := e.built("cancelled")
	e.exec(`UPDATE runs SET cancel_requested_at = ?, cancel_requested_by = 'carol' WHERE id = ?`, time.Now().UTC(), ev.RunID)
	e.s.deploy(context.Background(), ev)
	r := e.run(ev.RunID)
	if r.Status != runs.StatusCancelled || r.Error != "cancelled by carol" {
		t.Errorf("run = %s %q, want cancelled by carol", r.Status, r.Error)
	}
	if rel, html := e.current(); rel != good.RunID || html != "good" {
		t.Errorf("current = %s %q, want the good release kept", rel, html)
	}
	if !e.lockFree(ev) {
		t.Error("lock still held after the cancelled run")
	}
}
