package builder

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/workspace"
)

// mergeRepo gives e's repository a main with two feature branches forked before main's
// last commit, touching other files, and a hotfix branch that conflicts with main in two
// files. It returns main's head.
func mergeRepo(e *env) string {
	e.t.Helper()
	r := e.repo
	fork := r.commit("main", map[string]string{"site/index.html": "main 1\n", "site/conf.txt": "port 80\n"})
	gitTest(e.t, r.work, "checkout", "-q", "-b", "feature-a", fork)
	r.commit("feature-a", map[string]string{"site/a.html": "from a\n"})
	gitTest(e.t, r.work, "checkout", "-q", "-b", "feature-b", fork)
	r.commit("feature-b", map[string]string{"site/b.html": "from b\n"})
	gitTest(e.t, r.work, "checkout", "-q", "-b", "hotfix", fork)
	r.commit("hotfix", map[string]string{"site/index.html": "hotfix\n", "site/conf.txt": "port 8080\n"})
	gitTest(e.t, r.work, "checkout", "-q", "main")
	return r.commit("main", map[string]string{"site/index.html": "main 2\n", "site/conf.txt": "port 443\n"})
}

func (e *env) runGitRow(id string) runGit {
	e.t.Helper()
	var row runGit
	if err := e.db.Where("run_id = ?", id).Take(&row).Error; err != nil {
		e.t.Fatalf("run_git of %s: %v", id, err)
	}
	return row
}

// noRunDirs fails the test when a run left a checkout, home or run repository behind.
func (e *env) noRunDirs() {
	e.t.Helper()
	for _, sub := range []string{"runs", "homes"} {
		entries, err := os.ReadDir(filepath.Join(e.dir, "ws", sub))
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		for _, en := range entries {
			e.t.Errorf("left behind: ws/%s/%s", sub, en.Name())
		}
	}
}

// The project's merge refs are merged into the run's commit; the merged commit is what is
// built, recorded and announced, and build-once reuse keys on it: the unmerged build of the
// same commit is not reused, the same merge again is.
func TestMergeRefsBeforeBuilding(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", "site", "s1", nil)
		head := mergeRepo(e)
		e.start(e.config(""), e.co)

		plainID, plain := e.buildAndDeploy("p1", "main")
		if plain.CommitSHA != head {
			t.Fatalf("run without merge refs built %s, want %s", plain.CommitSHA, head)
		}
		if log := e.logOf(plainID); strings.Contains(log, "merging") {
			t.Errorf("a run without merge refs logged a merge:\n%s", log)
		}

		e.exec(`UPDATE projects SET merge_refs = ? WHERE id = 'p1'`, `["feature-a","refs/heads/feature-b"]`)
		id, r := e.buildAndDeploy("p1", "main")
		ev := e.builtEvent(id)
		if r.CommitSHA == head || ev.Commit != r.CommitSHA {
			t.Fatalf("merged run: run commit %s, RunBuilt commit %s; want one merged commit other than main's %s", r.CommitSHA, ev.Commit, head)
		}
		if r.ArtifactSHA256 == plain.ArtifactSHA256 {
			t.Fatal("the merged run reused the unmerged build's artifact")
		}
		out := unpacked(t, r.ArtifactPath)
		for name, want := range map[string]string{"index.html": "main 2\n", "a.html": "from a\n", "b.html": "from b\n"} {
			if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(got) != want {
				t.Errorf("merged artifact %s = %q, %v; want %q", name, got, err, want)
			}
		}
		log := e.logOf(id)
		if !inOrder(log, "merging 2 ref(s) into "+head, "merge feature-a (", "): merged", "merge refs/heads/feature-b (", "building merged commit "+r.CommitSHA) ||
			strings.Contains(log, "reusing the artifact") {
			t.Errorf("merged run's log does not tell the merge, or reused:\n%s", log)
		}
		row := e.runGitRow(id)
		var refs []workspace.MergeRef
		if err := json.Unmarshal([]byte(row.MergedRefs), &refs); err != nil {
			t.Fatal(err)
		}
		if row.BaseCommit != head || row.MergedCommit != r.CommitSHA || len(refs) != 2 || refs[0].Ref != "feature-a" || refs[1].Result != workspace.MergeResultMerged {
			t.Errorf("run_git = %+v (refs %+v); want base %s, merged %s, both refs merged", row, refs, head, r.CommitSHA)
		}

		// The same merge again makes the same commit, so its build is reused.
		againID, again := e.buildAndDeploy("p1", "main")
		if again.CommitSHA != r.CommitSHA || again.ArtifactSHA256 != r.ArtifactSHA256 {
			t.Errorf("second merged run: commit %s sha256 %s; want %s %s", again.CommitSHA, again.ArtifactSHA256, r.CommitSHA, r.ArtifactSHA256)
		}
		if log := e.logOf(againID); !strings.Contains(log, "reusing the artifact built for "+r.CommitSHA) {
			t.Errorf("second merged run did not reuse the merged build:\n%s", log)
		}
		e.noRunDirs()
	})
}

// A merge list in the commit's .fabu.yml replaces the project's.
func TestFabuYmlMergeListWins(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", "site", "s1", map[string]any{"merge_refs": `["feature-b"]`})
		mergeRepo(e)
		e.repo.commit("main", map[string]string{"site/.fabu.yml": "merge:\n  - feature-a\n"})
		e.start(e.config(""), e.co)
		_, r := e.buildAndDeploy("p1", "main")
		out := unpacked(t, r.ArtifactPath)
		if _, err := os.Stat(filepath.Join(out, "a.html")); err != nil {
			t.Errorf("feature-a listed in .fabu.yml was not merged: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, "b.html")); !os.IsNotExist(err) {
			t.Errorf("the project's feature-b was merged although .fabu.yml lists its own refs (stat %v)", err)
		}
	})
}

// A conflicting merge fails the run at once, naming the ref and the files; a missing or
// hostile merge ref fails it with the reason. Nothing is left behind.
func TestMergeFailuresFailTheRun(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		mergeRepo(e)
		e.start(e.config(""), e.co)
		tests := []struct {
			name, refs string
			want       []string
		}{
			{"conflict", `["feature-a","hotfix"]`, []string{"merge conflict", "merging hotfix conflicts in 2 file(s)", "site/conf.txt", "site/index.html"}},
			{"missing ref", `["no-such-branch"]`, []string{`merge ref "no-such-branch" not found`}},
			{"hostile ref", `["main;id"]`, []string{"merge_refs", `invalid git ref "main;id"`}},
			{"option ref", `["--upload-pack=touch /tmp/pwned"]`, []string{"merge_refs", `starts with "-"`}},
		}
		for i, tt := range tests {
			id := "m" + string(rune('a'+i))
			e.buildProject(id, "static", "site", "s1", map[string]any{"merge_refs": tt.refs, "name": "app-" + id, "deploy_path": "/srv/" + id})
			run := e.request(id, "main")
			r := e.waitStatus(run, runs.StatusFailed)
			for _, w := range tt.want {
				if !strings.Contains(r.Error, w) {
					t.Errorf("%s: error %q, want it to contain %q", tt.name, r.Error, w)
				}
			}
			if log := e.logOf(run); !strings.Contains(log, "build failed") {
				t.Errorf("%s: log does not say the build failed:\n%s", tt.name, log)
			}
		}
		e.noRunDirs()
	})
}
