package builder

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
)

// actionsOf waits until run id's post-success actions ended and returns their state and
// results.
func (e *env) actionsOf(id string) (string, []actionResult) {
	e.t.Helper()
	var row runGit
	eventually(e.t, 20*time.Second, "git actions of "+id, func() bool {
		err := e.db.Where("run_id = ?", id).Take(&row).Error
		return err == nil && (row.ActionsState == "done" || row.ActionsState == "warning")
	})
	var res []actionResult
	if err := json.Unmarshal([]byte(row.Actions), &res); err != nil {
		e.t.Fatalf("run_git.actions %q: %v", row.Actions, err)
	}
	return row.ActionsState, res
}

// remoteRef returns what ref names in e's bare repository, or "" when nothing.
func (e *env) remoteRef(ref string) string {
	e.t.Helper()
	out, err := gitOut(e.repo.bare, "rev-parse", "--verify", "--quiet", ref)
	if err != nil {
		return ""
	}
	return out
}

// After a successful deploy, the tag is pushed at the built (here merged) commit and the
// built commit is merged into a branch that diverged, both landing in the remote.
func TestPostSuccessTagAndBranchMerge(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		head := mergeRepo(e)
		gitTest(t, e.repo.work, "checkout", "-q", "-b", "production", head+"^")
		prodTip := e.repo.commit("production", map[string]string{"site/ops.txt": "prod only\n"})
		e.buildProject("p1", "static", "site", "s1", map[string]any{
			"merge_refs":  `["feature-a"]`,
			"git_actions": `{"tag":"release-{{date}}-{{run}}","merge_into":"production","merge_mode":"merge"}`,
		})
		bl := e.start(e.config(""), e.co)

		id, r := e.buildAndDeploy("p1", "main")
		state, res := e.actionsOf(id)
		if state != "done" || len(res) != 2 {
			t.Fatalf("actions = %s %+v, want done with a tag and a merge", state, res)
		}
		// A redelivered RunFinished does not act again (the tag would now be refused).
		logBefore := e.logOf(id)
		msg, err := events.New(events.TopicRunFinished, id, events.RunFinished{RunID: id, ProjectID: "p1", Status: string(runs.StatusSucceeded)})
		if err != nil {
			t.Fatal(err)
		}
		if err := bl.s.onFinishedGit(context.Background(), msg); err != nil {
			t.Fatalf("redelivered RunFinished: %v", err)
		}
		if again, res2 := e.actionsOf(id); again != "done" || len(res2) != 2 || e.logOf(id) != logBefore {
			t.Errorf("a redelivery ran the actions again: %s %+v", again, res2)
		}
		done := e.run(id)
		tag := "release-" + done.FinishedAt.UTC().Format("20060102") + "-" + id
		if res[0].Action != "tag" || res[0].Target != tag || res[0].Outcome != OutcomePushed {
			t.Errorf("tag action = %+v, want %s pushed", res[0], tag)
		}
		if got := e.remoteRef("refs/tags/" + tag); got != r.CommitSHA {
			t.Errorf("remote tag %s = %q, want the merged built commit %s", tag, got, r.CommitSHA)
		}
		newProd := e.remoteRef("refs/heads/production")
		parents, err := gitOut(e.repo.bare, "show", "-s", "--format=%P", newProd)
		if err != nil {
			t.Fatal(err)
		}
		if parents != prodTip+" "+r.CommitSHA || res[1].Outcome != OutcomePushed || res[1].Commit != newProd {
			t.Errorf("production = %s with parents %q (action %+v); want a merge of %s and %s", newProd, parents, res[1], prodTip, r.CommitSHA)
		}
		if log := e.logOf(id); !inOrder(log, "post-success git actions for "+r.CommitSHA, "pushed tag "+tag, "merged "+r.CommitSHA+" into production (merged)") {
			t.Errorf("log does not tell the actions:\n%s", log)
		}
		if got := e.run(id).Status; got != runs.StatusSucceeded {
			t.Errorf("run status after actions = %s", got)
		}
		e.noRunDirs()
	})
}

// Actions that cannot be done are warnings on a run that stays succeeded, and never rewrite
// the remote: a branch that is not a fast-forward (ff-only), a conflicting merge, and a push
// the remote refuses.
func TestPostSuccessWarningsNeverRewriteHistory(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		head := mergeRepo(e)
		gitTest(t, e.repo.work, "checkout", "-q", "-b", "production", head+"^")
		prodTip := e.repo.commit("production", map[string]string{"site/ops.txt": "prod only\n"})
		gitTest(t, e.repo.work, "checkout", "-q", "-b", "stable", head+"^")
		stableTip := e.repo.commit("stable", map[string]string{"site/index.html": "stable\n"})
		e.start(e.config(""), e.co)

		project := func(id, actions string) {
			e.buildProject(id, "static", "site", "s1", map[string]any{"git_actions": actions, "name": "app-" + id, "deploy_path": "/srv/" + id})
		}
		project("ff", `{"merge_into":"production"}`)
		id, _ := e.buildAndDeploy("ff", "main")
		state, res := e.actionsOf(id)
		if state != "warning" || len(res) != 1 || !strings.Contains(res[0].Message, "is not a fast-forward") {
			t.Errorf("ff-only into a diverged branch: %s %+v, want a not-a-fast-forward warning", state, res)
		}
		if got := e.remoteRef("refs/heads/production"); got != prodTip {
			t.Errorf("production moved to %s, want it left at %s", got, prodTip)
		}

		project("conflict", `{"merge_into":"stable","merge_mode":"merge"}`)
		id, _ = e.buildAndDeploy("conflict", "main")
		state, res = e.actionsOf(id)
		if state != "warning" || !strings.Contains(res[0].Message, "conflicts in 1 file(s): site/index.html") {
			t.Errorf("conflicting merge: %s %+v, want a warning naming site/index.html", state, res)
		}
		if got := e.remoteRef("refs/heads/stable"); got != stableTip {
			t.Errorf("stable moved to %s, want it left at %s", got, stableTip)
		}
		if log := e.logOf(id); !strings.Contains(log, "warning: merge into stable") {
			t.Errorf("log has no warning line:\n%s", log)
		}

		hook := filepath.Join(e.repo.bare, "hooks", "pre-receive")
		if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'tags are protected' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		project("refused", `{"tag":"release-{{run}}"}`)
		id, _ = e.buildAndDeploy("refused", "main")
		state, res = e.actionsOf(id)
		if state != "warning" || !strings.Contains(res[0].Message, "refused") || !strings.Contains(res[0].Message, "hook declined") {
			t.Errorf("push refused by the remote: %s %+v, want a refused warning", state, res)
		}
		if got := e.remoteRef("refs/tags/release-" + id); got != "" {
			t.Errorf("refused tag exists in the remote at %s", got)
		}
		if got := e.run(id).Status; got != runs.StatusSucceeded {
			t.Errorf("a run with warnings is %s, want succeeded", got)
		}
		e.noRunDirs()
	})
}

func TestGitActionsValidate(t *testing.T) {
	good := []GitActions{{}, {Tag: "release-{{date}}-{{run}}"}, {MergeInto: "master", MergeMode: MergeModeMerge}, {MergeInto: "release/2.x", MergeMode: MergeModeFastForward}}
	for _, a := range good {
		if err := a.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", a, err)
		}
	}
	bad := []GitActions{{Tag: "rel;{{run}}"}, {Tag: "{{nope}}"}, {MergeInto: "--force"}, {MergeInto: "a..b"},
		{MergeInto: "main", MergeMode: "force"}, {MergeInto: strings.Repeat("a", 40)}}
	for _, a := range bad {
		if err := a.Validate(); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("Validate(%+v) = %v, want invalid", a, err)
		}
	}
}

// gitOut runs git on the bare repository gitDir and returns its trimmed output.
func gitOut(gitDir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"--git-dir=" + gitDir}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C", "HOME=" + os.TempDir()}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
