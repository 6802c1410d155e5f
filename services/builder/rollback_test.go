package builder

import (
	"context"
	"os"
	"strings"
	"testing"

	"gorm.io/gorm"

	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
)

// rollback asks for a rollback to run of, the way the gateway does.
func (e *env) rollback(project, of string) string {
	e.t.Helper()
	old := e.run(of)
	r := runs.Run{ProjectID: project, Ref: old.Ref, CommitSHA: old.CommitSHA, RollbackOf: of, Trigger: "rollback", TriggeredBy: "alice"}
	if err := e.db.Tx(context.Background(), func(tx *gorm.DB) error { return runs.Request(tx, &r) }); err != nil {
		e.t.Fatal(err)
	}
	e.relay.Kick()
	return r.ID
}

// A rollback takes the target lock like a deploy but builds nothing: it needs neither the
// repository nor an artifact, and hands the deployer the release the earlier run left.
func TestRollbackBuildsNothing(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.project("p1", "site", "s1")
		e.project("p2", "site", "s2")
		v1 := e.repo.commit("main", map[string]string{"site/index.html": "v1"})
		e.start(e.config(""), e.co)

		first := e.request("p1", "main")
		e.waitStatus(first, runs.StatusDeploying)
		ev1 := e.builtEvent(first)
		e.deployed(ev1)
		e.exec(`UPDATE runs SET release_id = id WHERE id = ?`, first) // as the deployer records it
		failed := e.request("p1", "main")
		e.waitStatus(failed, runs.StatusDeploying)
		evf := e.builtEvent(failed)
		e.deployed(evf)
		e.exec(`UPDATE runs SET status = 'failed' WHERE id = ?`, failed)

		// The repository is gone: a rollback must not need it.
		if err := os.Rename(e.repo.bare, e.repo.bare+".gone"); err != nil {
			t.Fatal(err)
		}
		rb := e.rollback("p1", first)
		r := e.waitStatus(rb, runs.StatusDeploying)
		ev := e.builtEvent(rb)
		if ev.RollbackRelease != first || ev.ArtifactPath != "" || ev.ArtifactURL != "" || ev.Commit != v1 ||
			ev.ArtifactSHA256 != ev1.ArtifactSHA256 || ev.ArtifactKind != "" {
			t.Errorf("rollback hand-over = %+v, want release %s of commit %s and no artifact", ev, first, v1)
		}
		if ev.LockKey != ev1.LockKey || ev.LockToken <= ev1.LockToken {
			t.Errorf("rollback lease %s/%d, deploy's %s/%d: want the target's lock, newer", ev.LockKey, ev.LockToken, ev1.LockKey, ev1.LockToken)
		}
		if r.CommitSHA != v1 || r.ArtifactPath != "" {
			t.Errorf("rollback run row commit %s artifact %q", r.CommitSHA, r.ArtifactPath)
		}
		logged := e.logOf(rb)
		if !strings.Contains(logged, "rolling back to release "+first) || strings.Contains(logged, "fetching") {
			t.Errorf("rollback log:\n%s", logged)
		}
		e.deployed(ev)

		// An image release is started again by its digest.
		digest := strings.Repeat("d", 64)
		image := "registry.example.com:5000/team/app@sha256:" + digest
		e.exec(`INSERT INTO runs (id, project_id, ref, commit_sha, status, release_id, artifact_path, artifact_sha256, created_at, updated_at)
			VALUES ('r-image', 'p1', 'main', ?, 'succeeded', 'r-image', ?, ?, ?, ?)`, v1, image, digest, r.CreatedAt, r.CreatedAt)
		irb := e.rollback("p1", "r-image")
		e.waitStatus(irb, runs.StatusDeploying)
		iev := e.builtEvent(irb)
		if iev.ArtifactKind != events.ArtifactImage || iev.ArtifactPath != image || iev.ArtifactSHA256 != digest || iev.RollbackRelease != "" {
			t.Errorf("image rollback hand-over = %+v, want image %s", iev, image)
		}
		e.deployed(iev)

		// Only a succeeded run of the same project, with a release, can be rolled back to.
		for name, c := range map[string]struct{ project, of, want string }{
			"a failed run":          {"p1", failed, "did not deploy a release"},
			"another project's run": {"p2", first, "another project"},
		} {
			id := e.rollback(c.project, c.of)
			got := e.waitStatus(id, runs.StatusFailed)
			if !strings.Contains(got.Error, c.want) {
				t.Errorf("rollback to %s: error %q, want %q", name, got.Error, c.want)
			}
		}
	})
}
