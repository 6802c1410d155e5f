package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/runs"
)

// A second run of a commit that was built by the same plan reuses its artifact without
// running a stage; a run of another commit builds again. The artifact is a single file,
// shipped as the one entry of the tar.gz.
func TestBuildOnceDeployMany(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "java-jar", ".", "s1", nil)
		files := map[string]string{
			".fabu.yml":  "stages:\n  - {name: package, run: sh package.sh}\nartifact:\n  file: target/*.jar\n",
			"package.sh": "mkdir -p target\necho \"jar of $FABU_COMMIT\" > target/app-1.0.jar\n",
		}
		first := e.repo.commit("main", files)
		e.start(e.config(""), e.co)

		// builds counts the runs so far that ran the stage (a sandboxed stage cannot
		// write outside its checkout, so the run's stage records tell).
		var ids []string
		buildAndDeploy := func(ref string) (string, runs.Run) {
			id, r := e.buildAndDeploy("p1", ref)
			ids = append(ids, id)
			return id, r
		}
		builds := func() int {
			n := 0
			for _, id := range ids {
				for _, row := range e.stagesOf(id) {
					if row.Name == "package" && row.Status == stageSucceeded {
						n++
					}
				}
			}
			return n
		}
		id1, r1 := buildAndDeploy("main")
		if n := builds(); n != 1 {
			t.Fatalf("after the first run the stage ran %d times, want 1", n)
		}
		jar := filepath.Join(unpacked(t, r1.ArtifactPath), "app-1.0.jar")
		if got, err := os.ReadFile(jar); err != nil || string(got) != "jar of "+first+"\n" {
			t.Errorf("the artifact's app-1.0.jar = %q, %v", got, err)
		}

		id2, r2 := buildAndDeploy(first)
		if n := builds(); n != 1 {
			t.Errorf("the second run of %s ran the stage again (%d runs)", first, n)
		}
		if r2.ArtifactSHA256 != r1.ArtifactSHA256 || r2.ArtifactPath == r1.ArtifactPath {
			t.Errorf("second run's artifact %s %s, want the first's sha256 %s in a file of its own", r2.ArtifactPath, r2.ArtifactSHA256, r1.ArtifactSHA256)
		}
		if got := sha256File(t, r2.ArtifactPath); got != r1.ArtifactSHA256 {
			t.Errorf("reused artifact file sha256 %s, want %s", got, r1.ArtifactSHA256)
		}
		if log := e.logOf(id2); !strings.Contains(log, "reusing the artifact built for "+first) || strings.Contains(log, "▶ stage") {
			t.Errorf("second run's log should say it reuses and run no stage:\n%s", log)
		}
		if rows := e.stagesOf(id2); len(rows) != 0 {
			t.Errorf("second run's run_stages = %+v, want none", rows)
		}
		var n int64
		e.db.Table("artifacts").Where("commit_sha = ?", first).Count(&n)
		if n != 1 {
			t.Errorf("%d artifact records of %s, want 1", n, first)
		}

		// A changed artifact file is not trusted: the next run builds again.
		if err := os.Remove(r1.ArtifactPath); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r1.ArtifactPath, []byte("tampered"), 0o644); err != nil {
			t.Fatal(err)
		}
		buildAndDeploy(first)
		if n := builds(); n != 2 {
			t.Errorf("a run after the artifact changed ran the stage %d times in all, want 2", n)
		}

		second := e.repo.commit("main", map[string]string{"README": "next"})
		_, r4 := buildAndDeploy("main")
		if n := builds(); n != 3 {
			t.Errorf("a run of a new commit ran the stage %d times in all, want 3", n)
		}
		if r4.CommitSHA != second || r4.ArtifactSHA256 == r1.ArtifactSHA256 {
			t.Errorf("new commit's run: commit %s sha256 %s", r4.CommitSHA, r4.ArtifactSHA256)
		}
		_ = id1
	})
}
