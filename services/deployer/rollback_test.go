package deployer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
)

// rollback makes a rollback run waiting for the deployer, as the builder hands it over:
// no artifact, the release to put back.
func (e *env) rollback(release string) events.RunBuilt {
	e.t.Helper()
	ev := e.built("unused")
	_ = os.Remove(ev.ArtifactPath)
	ev.ArtifactPath, ev.ArtifactURL, ev.RollbackRelease = "", "", release
	return ev
}

func TestRollbackSwitchesBackWithoutUpload(t *testing.T) {
	e := newEnv(t)
	var deployed []string
	for _, v := range []string{"v1", "v2", "v3"} {
		ev := e.built(v)
		e.s.deploy(context.Background(), ev)
		if r := e.run(ev.RunID); r.Status != runs.StatusSucceeded {
			t.Fatalf("deploy %s: %+v", v, r)
		}
		deployed = append(deployed, ev.RunID)
	}
	rb := e.rollback(deployed[0])
	e.s.deploy(context.Background(), rb)
	r := e.run(rb.RunID)
	if r.Status != runs.StatusSucceeded || r.ReleaseID != deployed[0] || r.Progress != 100 {
		t.Fatalf("rollback run = %s %q release %q progress %d, want succeeded with release %s", r.Status, r.Error, r.ReleaseID, r.Progress, deployed[0])
	}
	if rel, html := e.current(); rel != deployed[0] || html != "v1" {
		t.Fatalf("current = %s %q, want %s \"v1\"", rel, html, deployed[0])
	}
	if !e.lockFree(rb) {
		t.Error("lock still held after the rollback")
	}
	// Nothing was staged for the rollback run and nothing pruned.
	entries, err := os.ReadDir(filepath.Join(e.path, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if strings.Join(names, ",") != strings.Join(deployed, ",") {
		t.Errorf("releases = %v, want %v", names, deployed)
	}
	logged := logText(t, e, rb.RunID)
	for _, want := range []string{"rolling back 1 server(s)", "release " + deployed[0] + " found; current is releases/" + deployed[2],
		"switched current back to releases/" + deployed[0]} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	// A rollback of the rollback puts v3 back.
	rb2 := e.rollback(deployed[2])
	e.s.deploy(context.Background(), rb2)
	if rel, html := e.current(); rel != deployed[2] || html != "v3" {
		t.Fatalf("second rollback: current = %s %q", rel, html)
	}
}

func TestRollbackToMissingReleaseKeepsCurrent(t *testing.T) {
	e := newEnv(t)
	old := e.built("old")
	e.s.deploy(context.Background(), old)
	live := e.built("live")
	e.s.deploy(context.Background(), live)
	if r := e.run(live.RunID); r.Status != runs.StatusSucceeded {
		t.Fatalf("deploy: %+v", r)
	}
	linked := filepath.Join(e.path, "releases", "01LINKEDRELEASE")
	if err := os.Symlink(filepath.Join(e.path, "releases", old.RunID), linked); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.path, "releases", old.RunID)); err != nil {
		t.Fatal(err)
	}
	for name, release := range map[string]string{
		"pruned":            old.RunID,
		"a link, not a dir": "01LINKEDRELEASE",
		"hostile id":        "../../etc",
		"shell in the id":   "$(id)",
	} {
		t.Run(name, func(t *testing.T) {
			rb := e.rollback(release)
			e.s.deploy(context.Background(), rb)
			r := e.run(rb.RunID)
			if r.Status != runs.StatusFailed || r.ReleaseID != "" {
				t.Errorf("rollback run = %s release %q, want failed without a release", r.Status, r.ReleaseID)
			}
			if name == "pruned" && !strings.Contains(r.Error, "no longer under") {
				t.Errorf("error = %q, want it to say the release is gone", r.Error)
			}
			if rel, html := e.current(); rel != live.RunID || html != "live" {
				t.Errorf("current = %s %q, want the live release kept", rel, html)
			}
			if !e.lockFree(rb) {
				t.Error("lock still held after the failed rollback")
			}
		})
	}
}
