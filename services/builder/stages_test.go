package builder

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/testenv"
)

// buildProject inserts a project of type typ building e's repository at sourceDir, with
// build settings set (column → value), deploying to server.
func (e *env) buildProject(id, typ, sourceDir, server string, settings map[string]any) {
	e.t.Helper()
	e.project(id, sourceDir, server)
	set := map[string]any{"type": typ}
	for k, v := range settings {
		set[k] = v
	}
	if err := e.db.Table("projects").Where("id = ?", id).Updates(set).Error; err != nil {
		e.t.Fatal(err)
	}
}

// logOf returns run id's stored log lines as text.
func (e *env) logOf(id string) string {
	e.t.Helper()
	lines, err := runlog.Read(context.Background(), e.db.DB, id, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// stagesOf returns run id's run_stages rows in order.
func (e *env) stagesOf(id string) []stageRow {
	e.t.Helper()
	var rows []stageRow
	if err := e.db.Where("run_id = ?", id).Order("seq").Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// unpacked unpacks the artifact at p into a new directory and returns it.
func unpacked(t *testing.T, p string) string {
	t.Helper()
	out := t.TempDir()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := artifact.Unpack(context.Background(), f, out); err != nil {
		t.Fatalf("unpack %s: %v", p, err)
	}
	return out
}

// inOrder reports whether every string of want occurs in s, each after the one before.
func inOrder(s string, want ...string) bool {
	for _, w := range want {
		i := strings.Index(s, w)
		if i < 0 {
			return false
		}
		s = s[i+len(w):]
	}
	return true
}

// The stages of a .fabu.yml run in order in the checkout, each framed by marker lines and
// recorded in run_stages with its duration, and the artifact is what they left.
func TestPipelineStagesRunInOrder(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", "app", "s1", nil)
		commit := e.repo.commit("main", map[string]string{
			"app/.fabu.yml": `stages:
  - name: prepare
    run: sh prepare.sh
  - name: compile
    run: [sh, compile.sh, "two words"]
    timeout: 1m
artifact:
  dir: out
`,
			"app/prepare.sh": "mkdir -p out\necho one > out/order\necho \"prepared $FABU_COMMIT for $FABU_REF\"\n",
			"app/compile.sh": "sleep 0.2\necho \"$1\" >> out/order\necho compiled >&2\n",
		})
		e.start(e.config(""), e.co)

		id := e.request("p1", "main")
		e.waitStatus(id, runs.StatusDeploying)
		ev := e.builtEvent(id)
		out := unpacked(t, ev.ArtifactPath)
		if got, err := os.ReadFile(filepath.Join(out, "order")); err != nil || string(got) != "one\ntwo words\n" {
			t.Errorf("artifact order = %q, %v; want both stages' lines in order", got, err)
		}
		log := e.logOf(id)
		if !inOrder(log, "▶ stage prepare: sh prepare.sh", "prepared "+commit+" for main", "✔ stage prepare ",
			"▶ stage compile: sh compile.sh 'two words'", "compiled", "✔ stage compile ", "packaged") {
			t.Errorf("log lacks the stage markers in order:\n%s", log)
		}
		rows := e.stagesOf(id)
		if len(rows) != 2 || rows[0].Name != "prepare" || rows[1].Name != "compile" {
			t.Fatalf("run_stages = %+v, want prepare, compile", rows)
		}
		for _, r := range rows {
			if r.Status != stageSucceeded || r.ExitCode == nil || *r.ExitCode != 0 || r.FinishedAt == nil || r.FinishedAt.Before(r.StartedAt) {
				t.Errorf("stage %s: %+v, want succeeded with exit 0 and a finish time", r.Name, r)
			}
		}
		if rows[1].DurationMS < 200 {
			t.Errorf("compile took %dms by run_stages, want at least the 200ms it slept", rows[1].DurationMS)
		}
	})
}

// A failing stage fails the run with the stage's exit status; the stages after it never
// run and are recorded as skipped.
func TestFailingStageFailsRun(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", ".", "s1", nil)
		e.repo.commit("main", map[string]string{
			".fabu.yml": `stages:
  - {name: first, run: sh ok.sh}
  - {name: second, run: sh fail.sh}
  - {name: third, run: sh ok.sh}
`,
			"ok.sh":   "echo fine\n",
			"fail.sh": "echo 'cannot compile Main.java' >&2\nexit 3\n",
		})
		e.start(e.config(""), e.co)

		id := e.request("p1", "main")
		r := e.waitStatus(id, runs.StatusFailed)
		if !strings.Contains(r.Error, "stage second: exit status 3: cannot compile Main.java") {
			t.Errorf("run error = %q, want the stage, its exit status and its last error line", r.Error)
		}
		log := e.logOf(id)
		if !strings.Contains(log, "✘ stage second failed: exit status 3") || strings.Contains(log, "▶ stage third") {
			t.Errorf("log should mark second failed and never start third:\n%s", log)
		}
		rows := e.stagesOf(id)
		want := []string{stageSucceeded, stageFailed, stageSkipped}
		if len(rows) != len(want) {
			t.Fatalf("run_stages = %+v, want %v", rows, want)
		}
		for i, r := range rows {
			if r.Status != want[i] {
				t.Errorf("stage %s: status %s, want %s", r.Name, r.Status, want[i])
			}
		}
		if rows[1].ExitCode == nil || *rows[1].ExitCode != 3 {
			t.Errorf("failed stage exit code = %v, want 3", rows[1].ExitCode)
		}
		if rows[2].ExitCode != nil {
			t.Errorf("skipped stage has exit code %d", *rows[2].ExitCode)
		}
	})
}

// A .fabu.yml with an error fails the run before any stage, naming the file, the line and
// the reason.
func TestPipelineFileErrorFailsAtOnce(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", "app", "s1", nil)
		e.repo.commit("main", map[string]string{
			"app/.fabu.yml": "stages:\n  - name: build\n    run: sh build.sh\n    timeout: soon\n",
			"app/build.sh":  "echo never\n",
		})
		e.start(e.config(""), e.co)

		id := e.request("p1", "main")
		r := e.waitStatus(id, runs.StatusFailed)
		for _, want := range []string{"app/.fabu.yml", "line 4", "timeout"} {
			if !strings.Contains(r.Error, want) {
				t.Errorf("run error = %q, want it to contain %q", r.Error, want)
			}
		}
		if log := e.logOf(id); !strings.Contains(log, "line 4") || strings.Contains(log, "▶ stage") {
			t.Errorf("log should name line 4 and start no stage:\n%s", log)
		}
		if rows := e.stagesOf(id); len(rows) != 0 {
			t.Errorf("run_stages = %+v, want none", rows)
		}
	})
}

// A docker build whose container CLI cannot reach its engine (podman pointed at a socket
// that does not exist, as docker is without its daemon) fails in the build stage with the
// CLI's reason, and nothing is pushed.
func TestDockerBuildWithoutEngineFails(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		testenv.Missing(t, "podman", "run scripts/test-deps.sh as root (apt-get install -y podman)", err)
	}
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "docker", ".", "s1", map[string]any{"build_image": "127.0.0.1:5999/team/app"})
		e.repo.commit("main", map[string]string{"Dockerfile": "FROM scratch\n"})
		cfg := e.config("")
		cfg.ContainerCLI = "podman"
		cfg.ContainerEnv = map[string]string{"CONTAINER_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock")}
		e.start(cfg, e.co)

		id := e.request("p1", "main")
		r := e.waitStatus(id, runs.StatusFailed)
		if !strings.Contains(r.Error, "stage build") || !strings.Contains(r.Error, "none.sock") {
			t.Errorf("run error = %q, want the build stage failing to reach the engine", r.Error)
		}
		rows := e.stagesOf(id)
		if len(rows) != 1 || rows[0].Name != "build" || rows[0].Status != stageFailed {
			t.Errorf("run_stages = %+v, want the build failed and no push", rows)
		}
	})
}

// A docker project without a Dockerfile fails before any stage and says so.
func TestDockerBuildWithoutDockerfileFails(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "docker", ".", "s1", map[string]any{"build_image": "127.0.0.1:5999/team/app"})
		e.repo.commit("main", map[string]string{"README.md": "no Dockerfile here\n"})
		e.start(e.config(""), e.co)

		id := e.request("p1", "main")
		r := e.waitStatus(id, runs.StatusFailed)
		if !strings.Contains(r.Error, "no Dockerfile") {
			t.Errorf("run error = %q, want it to say there is no Dockerfile", r.Error)
		}
		if rows := e.stagesOf(id); len(rows) != 0 {
			t.Errorf("run_stages = %+v, want none", rows)
		}
	})
}

// Waiting helper for tests that build one project several times: the run is deployed
// (by the test's stand-in deployer) so the next one is admitted.
func (e *env) buildAndDeploy(project, ref string) (string, runs.Run) {
	e.t.Helper()
	id := e.request(project, ref)
	r := e.waitStatus(id, runs.StatusDeploying)
	e.deployed(e.builtEvent(id))
	e.waitStatus(id, runs.StatusSucceeded)
	return id, r
}

// Shutting the builder down mid-stage kills the stage's processes, records the stage as
// cancelled and hands the run back to the queue.
func TestShutdownKillsRunningStage(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		// The stage runs in a PID namespace: the test finds its child on the host by a
		// command line no other process has.
		mark := fmt.Sprintf("60.%d%d", os.Getpid(), time.Now().UnixNano()%100000)
		e.buildProject("p1", "static", ".", "s1", map[string]any{"build_env": `{"MARK":"` + mark + `"}`})
		e.repo.commit("main", map[string]string{
			".fabu.yml": "stages:\n  - {name: slow, run: sh slow.sh}\nartifact:\n  dir: .\n",
			// The stage's child (sleep) must die too, not only the shell.
			"slow.sh": "sleep \"$MARK\" &\nwait\n",
		})
		bl := e.start(e.config(""), e.co)

		id := e.request("p1", "main")
		var pid int
		eventually(t, 10*time.Second, "the stage's child to start", func() bool {
			pids := testenv.PIDsOf("sleep " + mark)
			if len(pids) == 1 {
				pid = pids[0]
			}
			return len(pids) == 1
		})
		bl.stop(t)
		if left := testenv.PIDsOf("sleep " + mark); len(left) > 0 {
			t.Errorf("the stage's child %d is still alive after shutdown", pid)
		}
		if r := e.run(id); r.Status != runs.StatusQueued {
			t.Errorf("run status %s after shutdown, want queued", r.Status)
		}
		rows := e.stagesOf(id)
		if len(rows) != 1 || rows[0].Status != stageCancelled || rows[0].FinishedAt == nil {
			t.Errorf("run_stages = %+v, want slow cancelled", rows)
		}
	})
}
