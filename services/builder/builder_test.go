package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
)

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A requested run goes requested → queued → building → deploying, with the exact commit,
// its artifact and the lease it hands to the deployer.
func TestBuildHandsArtifactToDeployer(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		first := e.repo.commit("main", map[string]string{"site/index.html": "v1", "README.md": "not shipped"})
		head := e.repo.commit("main", map[string]string{"site/index.html": "v2"})
		feature := e.repo.commit("feature/x", map[string]string{"site/index.html": "feature"})
		e.start(e.config(""), e.co)

		tests := []struct {
			name, ref, wantCommit, wantIndex string
		}{
			{"branch resolves to its head", "main", head, "v2"},
			{"exact commit", first, first, "v1"},
			{"other branch", "feature/x", feature, "feature"},
		}
		for _, tt := range tests {
			id := e.request("p1", tt.ref)
			r := e.waitStatus(id, runs.StatusDeploying)
			ev := e.builtEvent(id)
			if ev.Commit != tt.wantCommit || r.CommitSHA != tt.wantCommit {
				t.Errorf("%s: commit event %s row %s, want %s", tt.name, ev.Commit, r.CommitSHA, tt.wantCommit)
			}
			if ev.LockToken <= 0 || r.LockToken != ev.LockToken || ev.LockKey == "" {
				t.Errorf("%s: lock token event %d row %d, key %q", tt.name, ev.LockToken, r.LockToken, ev.LockKey)
			}
			if r.ArtifactPath != ev.ArtifactPath || r.ArtifactSHA256 != ev.ArtifactSHA256 {
				t.Errorf("%s: row artifact %s %s, event %s %s", tt.name, r.ArtifactPath, r.ArtifactSHA256, ev.ArtifactPath, ev.ArtifactSHA256)
			}
			if got := sha256File(t, ev.ArtifactPath); got != ev.ArtifactSHA256 {
				t.Errorf("%s: artifact sha256 %s, event says %s", tt.name, got, ev.ArtifactSHA256)
			}
			out := t.TempDir()
			f, err := os.Open(ev.ArtifactPath)
			if err != nil {
				t.Fatal(err)
			}
			err = artifact.Unpack(context.Background(), f, out)
			f.Close()
			if err != nil {
				t.Fatalf("%s: unpack: %v", tt.name, err)
			}
			if b, err := os.ReadFile(filepath.Join(out, "index.html")); err != nil || string(b) != tt.wantIndex {
				t.Errorf("%s: index.html = %q, %v; want %q", tt.name, b, err, tt.wantIndex)
			}
			if _, err := os.Stat(filepath.Join(out, "README.md")); !os.IsNotExist(err) {
				t.Errorf("%s: file outside source dir packaged: %v", tt.name, err)
			}
			if r.StartedAt == nil || r.HeartbeatAt == nil || r.Progress != 55 {
				t.Errorf("%s: started %v heartbeat %v progress %d", tt.name, r.StartedAt, r.HeartbeatAt, r.Progress)
			}
			var topics []string
			e.db.Table("outbox").Where("msg_key = ?", id).Order("seq").Pluck("topic", &topics)
			if want := []string{events.TopicRunRequested, events.TopicRunBuilt}; !slices.Equal(topics, want) {
				t.Errorf("%s: outbox events %v, want %v", tt.name, topics, want)
			}
			e.deployed(ev)
		}
	})
}

// Two runs of one target never build at once: the second waits in the queue until the
// first has finished, then is admitted with a higher fencing token.
func TestSameTargetWaitsForLock(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		bl := e.start(e.config(""), e.co)

		first := e.request("p1", "main")
		e.waitStatus(first, runs.StatusDeploying)
		ev1 := e.builtEvent(first)
		second := e.request("p1", "main")
		key := e.keyOf(bl.s, "p1")
		eventually(t, 10*time.Second, "second run queued", func() bool {
			items, err := e.co.List(context.Background(), queueName(key))
			if err != nil {
				t.Fatal(err)
			}
			return e.run(second).Status == runs.StatusQueued && len(items) == 1 && items[0].ID == second
		})
		// Admission is attempted on every request and sweep; one more, synchronously, must
		// leave the second run waiting while the first holds the target.
		bl.s.admit(context.Background(), key)
		if r := e.run(second); r.Status != runs.StatusQueued || r.LockToken != 0 {
			t.Fatalf("second run %s with token %d while the first deploys", r.Status, r.LockToken)
		}
		if lockFree(t, e.co, ev1.LockKey) {
			t.Fatal("target lock free while the first run deploys")
		}

		e.deployed(ev1)
		r2 := e.waitStatus(second, runs.StatusDeploying)
		r1 := e.run(first)
		if r2.StartedAt == nil || r1.FinishedAt == nil || r2.StartedAt.Before(*r1.FinishedAt) {
			t.Errorf("second started %v before the first finished %v", r2.StartedAt, r1.FinishedAt)
		}
		if ev2 := e.builtEvent(second); ev2.LockKey != ev1.LockKey || ev2.LockToken <= ev1.LockToken {
			t.Errorf("second lease %s/%d, first %s/%d: want the same key and a higher token", ev2.LockKey, ev2.LockToken, ev1.LockKey, ev1.LockToken)
		}
	})
}

// Runs of different targets build at the same time.
func TestDifferentTargetsBuildConcurrently(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.project("p2", "site", "s2")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		// git waits for the gate, so both builds must be in flight together to pass it.
		gate := filepath.Join(t.TempDir(), "gate")
		git := script(t, fmt.Sprintf("while [ ! -e %q ]; do sleep 0.05; done\nexec %q \"$@\"\n", gate, realGit(t)))
		bl := e.start(e.config(git), e.co)
		if k1, k2 := e.keyOf(bl.s, "p1"), e.keyOf(bl.s, "p2"); k1 == k2 {
			t.Fatalf("projects on different servers share conflict key %s", k1)
		}
		a, c := e.request("p1", "main"), e.request("p2", "main")
		eventually(t, 10*time.Second, "both runs building", func() bool {
			return e.run(a).Status == runs.StatusBuilding && e.run(c).Status == runs.StatusBuilding
		})
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.waitStatus(a, runs.StatusDeploying)
		e.waitStatus(c, runs.StatusDeploying)
		if e.builtEvent(a).LockKey == e.builtEvent(c).LockKey {
			t.Error("runs of different targets share a lock")
		}
	})
}

// A build that cannot succeed fails the run with a clear error and frees the target, so the
// next run of that target proceeds.
func TestBuildFailureFreesTarget(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.project("nosrc", "web", "s2")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		bl := e.start(e.config(""), e.co)

		tests := []struct {
			name, project, ref string
			wantErr            []string
		}{
			{"unknown ref", "p1", "no-such-branch", []string{"build failed", "resolve no-such-branch"}},
			{"source dir missing", "nosrc", "main", []string{"build failed", `source dir "web" does not exist`}},
		}
		for _, tt := range tests {
			id := e.request(tt.project, tt.ref)
			r := e.waitStatus(id, runs.StatusFailed)
			for _, want := range tt.wantErr {
				if !strings.Contains(r.Error, want) {
					t.Errorf("%s: error %q, want it to contain %q", tt.name, r.Error, want)
				}
			}
			if r.FinishedAt == nil {
				t.Errorf("%s: failed run has no finished_at", tt.name)
			}
			key := lockName(e.keyOf(bl.s, tt.project))
			eventually(t, 5*time.Second, tt.name+": lock freed", func() bool { return lockFree(t, e.co, key) })
			var n int64
			e.db.Table("outbox").Where("msg_key = ? AND topic = ?", id, events.TopicRunBuilt).Count(&n)
			if n != 0 {
				t.Errorf("%s: failed run announced RunBuilt", tt.name)
			}
		}
		// The same target builds again.
		next := e.request("p1", "main")
		e.waitStatus(next, runs.StatusDeploying)
	})
}

// The reconciler fails active runs whose heartbeat is older than StaleAfter, and only those.
func TestReconcileFailsStaleRuns(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		cfg := e.config("")
		s, err := New(cfg, e.db, e.bus, e.co, slog.New(slog.NewTextHandler(io.Discard, nil)), e.relay.Kick)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		old := now.Add(-2 * cfg.StaleAfter)
		tests := []struct {
			name      string
			status    runs.Status
			heartbeat *time.Time
			want      runs.Status
		}{
			{"building without heartbeat", runs.StatusBuilding, &old, runs.StatusFailed},
			{"deploying without heartbeat", runs.StatusDeploying, &old, runs.StatusFailed},
			{"building never heartbeated", runs.StatusBuilding, nil, runs.StatusFailed},
			{"building with fresh heartbeat", runs.StatusBuilding, &now, runs.StatusBuilding},
			{"deploying with fresh heartbeat", runs.StatusDeploying, &now, runs.StatusDeploying},
			{"queued long ago", runs.StatusQueued, &old, runs.StatusQueued},
		}
		ids := make([]string, len(tests))
		for i, tt := range tests {
			ids[i] = fmt.Sprintf("run%d", i)
			e.exec(`INSERT INTO runs (id, project_id, ref, status, lock_token, heartbeat_at, created_at, updated_at) VALUES (?, 'p1', 'main', ?, ?, ?, ?, ?)`,
				ids[i], tt.status, 1000+i, tt.heartbeat, old, old)
		}
		s.reconcile(context.Background())
		for i, tt := range tests {
			r := e.run(ids[i])
			if r.Status != tt.want {
				t.Errorf("%s: status %s, want %s", tt.name, r.Status, tt.want)
				continue
			}
			var n int64
			e.db.Table("outbox").Where("msg_key = ? AND topic = ?", ids[i], events.TopicRunFinished).Count(&n)
			if failed := tt.want == runs.StatusFailed; failed != (n == 1) {
				t.Errorf("%s: %d RunFinished events", tt.name, n)
			}
			if tt.want == runs.StatusFailed && !strings.Contains(r.Error, "no heartbeat") {
				t.Errorf("%s: error %q, want it to name the missing heartbeat", tt.name, r.Error)
			}
		}
	})
}

// The running builder's sweep finds a run whose worker died, without help.
func TestSweepFailsRunOfDeadWorker(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		cfg := e.config("")
		now := time.Now().UTC()
		// A worker that heartbeated just now and then died: failed once StaleAfter passes.
		e.exec(`INSERT INTO runs (id, project_id, ref, status, lock_token, heartbeat_at, created_at, updated_at) VALUES ('dead', 'p1', 'main', 'building', 7, ?, ?, ?)`, now, now, now)
		e.start(cfg, e.co)
		r := e.waitStatus("dead", runs.StatusFailed)
		if r.FinishedAt == nil || r.FinishedAt.Sub(now) < cfg.StaleAfter {
			t.Errorf("failed at %v, less than StaleAfter %s after its last heartbeat %v", r.FinishedAt, cfg.StaleAfter, now)
		}
	})
}

// A run queued in the database but missing from the coordinator's queue (the coordinator
// restarted empty) is put back and admitted by the sweep.
func TestSweepRestoresLostQueue(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		// The run reached queued, then the coordinator lost everything (its request event
		// long handled): only the database knows it waits.
		now := time.Now().UTC()
		id := "queued-run"
		e.exec(`INSERT INTO runs (id, project_id, ref, status, progress, created_at, updated_at) VALUES (?, 'p1', 'main', 'queued', 5, ?, ?)`, id, now, now)
		co := newCoord(t, b, e.redis+"restarted:") // empty: nothing of the old state
		e.co = co
		e.start(e.config(""), co)
		e.waitStatus(id, runs.StatusDeploying)
	})
}

// Stopping a builder mid-build hands the run back: queued again, lock free, and another
// builder builds it.
func TestShutdownHandsRunBack(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		started := filepath.Join(t.TempDir(), "started")
		slow := script(t, fmt.Sprintf(`for a in "$@"; do
	case "$a" in clone|remote) touch %q; sleep 30; break;; esac
done
exec %q "$@"
`, started, realGit(t)))
		first := e.start(e.config(slow), e.co)
		id := e.request("p1", "main")
		eventually(t, 10*time.Second, "git clone started", func() bool {
			_, err := os.Stat(started)
			return err == nil
		})
		r := e.run(id)
		if r.Status != runs.StatusBuilding || r.LockToken == 0 {
			t.Fatalf("run %s token %d while git clones", r.Status, r.LockToken)
		}
		key := lockName(e.keyOf(first.s, "p1"))
		t0 := time.Now()
		first.stop(t)
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("stop took %s: the slow git was not killed", d)
		}
		r = e.run(id)
		if r.Status != runs.StatusQueued || r.LockToken != 0 {
			t.Fatalf("after shutdown run is %s with token %d (%q), want queued with token 0", r.Status, r.LockToken, r.Error)
		}
		if !lockFree(t, e.co, key) {
			t.Fatal("lock still held after the builder handed the run back")
		}
		e.start(e.config(""), e.co)
		e.waitStatus(id, runs.StatusDeploying)
		if ev := e.builtEvent(id); ev.LockToken <= 0 {
			t.Errorf("second builder's lease token %d", ev.LockToken)
		}
	})
}

// Redelivery of one run.requested event neither queues the run twice nor puts it back in
// the queue once it has moved on.
func TestRedeliveredRequestQueuesOnce(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		// The sweep would also restore the index; keep it out of the way after its first
		// round so that what the queue holds is what onRequested did.
		cfg := e.config("")
		cfg.SweepEvery = time.Hour
		bl := e.start(cfg, e.co)
		key := e.keyOf(bl.s, "p1")
		holder := e.request("p1", "main")
		e.waitStatus(holder, runs.StatusDeploying)

		id := e.request("p1", "main")
		e.waitStatus(id, runs.StatusQueued)
		var row struct {
			ID, Topic, MsgKey, Payload string
		}
		if err := e.db.Table("outbox").Where("msg_key = ? AND topic = ?", id, events.TopicRunRequested).Take(&row).Error; err != nil {
			t.Fatal(err)
		}
		m := bus.Message{ID: row.ID, Topic: row.Topic, Key: row.MsgKey, Payload: []byte(row.Payload)}
		queue := func() []string {
			items, err := e.co.List(context.Background(), queueName(key))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			return ids
		}
		eventually(t, 5*time.Second, "run in the queue", func() bool { return slices.Equal(queue(), []string{id}) })

		// Delivered again while it waits: still once in the queue.
		for range 2 {
			if err := bl.s.onRequested(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
		if got := queue(); !slices.Equal(got, []string{id}) {
			t.Errorf("queue after redelivery %v, want [%s]", got, id)
		}
		var n int64
		e.db.Table("processed_events").Where("event_id = ?", m.ID).Count(&n)
		if n != 1 {
			t.Errorf("processed_events rows for the event: %d, want 1", n)
		}

		// Delivered again after it moved on: it is not queued again.
		e.deployed(e.builtEvent(holder))
		e.waitStatus(id, runs.StatusDeploying)
		if err := bl.s.onRequested(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if got := queue(); len(got) != 0 {
			t.Errorf("queue after a late redelivery %v, want it empty", got)
		}
		if r := e.run(id); r.Status != runs.StatusDeploying {
			t.Errorf("late redelivery moved the run to %s", r.Status)
		}
	})
}
