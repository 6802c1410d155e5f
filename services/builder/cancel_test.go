package builder

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/runs"
)

// pgrep reports whether a process whose command line contains pattern is alive.
func pgrep(pattern string) bool {
	return exec.Command("pgrep", "-f", pattern).Run() == nil
}

// Cancelling a building run (the gateway's mark) stops its stage at the next heartbeat:
// the run ends cancelled with who cancelled it, the stage's process is gone, the lock is
// freed and the run queued behind it proceeds.
func TestCancelBuildingRun(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		// GNU sleep sums its arguments: the fraction makes the command line unique.
		marker := fmt.Sprintf("sleep 300 0.%d", time.Now().UnixNano())
		e.buildProject("p1", "static", ".", "s1", nil)
		e.repo.commit("main", map[string]string{
			".fabu.yml": "stages:\n  - {name: slow, run: " + marker + "}\nartifact:\n  dir: .\n",
		})
		e.repo.commit("fast", map[string]string{
			".fabu.yml": "stages:\n  - {name: quick, run: 'true'}\nartifact:\n  dir: .\n",
		})
		cfg := e.config("")
		cfg.LockTTL, cfg.HeartbeatEvery = 1200*time.Millisecond, 200*time.Millisecond
		bl := e.start(cfg, e.co)
		defer bl.stop(t)

		id := e.request("p1", "main")
		first := e.waitStatus(id, runs.StatusBuilding)
		eventually(t, 10*time.Second, "the slow stage to start", func() bool { return pgrep(marker) })
		next := e.request("p1", "fast")
		e.waitStatus(next, runs.StatusQueued)

		start := time.Now()
		if err := e.db.Tx(context.Background(), func(tx *gorm.DB) error { return runs.CancelRequest(tx, id, "carol") }); err != nil {
			t.Fatal(err)
		}
		var r runs.Run
		eventually(t, 10*time.Second, "the run to be cancelled", func() bool {
			r = e.run(id)
			return r.Status.Final()
		})
		if r.Status != runs.StatusCancelled || r.Error != "cancelled by carol" || r.FinishedAt == nil {
			t.Fatalf("run = %s %q, want cancelled %q", r.Status, r.Error, "cancelled by carol")
		}
		t.Logf("cancelled in %s", time.Since(start).Round(time.Millisecond))
		eventually(t, 5*time.Second, "the slow stage's process to die", func() bool { return !pgrep(marker) })

		// The queued run takes the freed lock and builds.
		nr := e.waitStatus(next, runs.StatusDeploying)
		if nr.LockToken == first.LockToken {
			t.Errorf("next run holds token %d, the cancelled run's", nr.LockToken)
		}
		e.deployed(e.builtEvent(next))
		e.waitStatus(next, runs.StatusSucceeded)
		key := e.keyOf(bl.s, "p1")
		eventually(t, 5*time.Second, "the lock to be free", func() bool { return lockFree(t, e.co, key) })
	})
}
