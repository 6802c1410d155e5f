package workspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

// mergeFixture is a mirrored origin whose main has two feature branches off it that touch
// different files, and a third that conflicts with main in two files.
type mergeFixture struct {
	w                     *Workspace
	o                     *origin
	mirror                string
	main, a, b, conflicts string
}

func newMergeFixture(t *testing.T) *mergeFixture {
	t.Helper()
	o := newOrigin(t)
	f := &mergeFixture{w: &Workspace{Base: t.TempDir()}, o: o}
	root := o.commit("main", map[string]string{"README.md": "base\n", "conf/app.yml": "port: 80\n", "VERSION": "1\n"})
	f.a = o.commit("feature-a", map[string]string{"a.txt": "from a\n"})
	git(t, o.work, "checkout", "--quiet", "main")
	git(t, o.work, "checkout", "--quiet", "-b", "feature-b", root)
	f.b = o.commit("feature-b", map[string]string{"b.txt": "from b\n"})
	git(t, o.work, "checkout", "--quiet", "-b", "hotfix", root)
	f.conflicts = o.commit("hotfix", map[string]string{"conf/app.yml": "port: 8080\n", "VERSION": "1.0.1\n"})
	git(t, o.work, "checkout", "--quiet", "-B", "main", root)
	f.main = o.commit("main", map[string]string{"conf/app.yml": "port: 443\n", "VERSION": "2\n"})
	var err error
	if f.mirror, err = f.w.Mirror(context.Background(), "gitlab", "grp", "app", o.bare, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *mergeFixture) runRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run.git")
	if err := f.w.RunRepo(context.Background(), f.mirror, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMergeTwoBranchesCleanly(t *testing.T) {
	ctx := context.Background()
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)
	merged, refs, err := f.w.Merge(ctx, f.mirror, gitDir, f.main, []MergeRef{{Ref: "feature-a"}, {Ref: "refs/heads/feature-b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []MergeRef{{Ref: "feature-a", Commit: f.a, Result: MergeResultMerged}, {Ref: "refs/heads/feature-b", Commit: f.b, Result: MergeResultMerged}}
	if !slices.Equal(refs, want) {
		t.Fatalf("merged refs = %+v, want %+v", refs, want)
	}
	dest := filepath.Join(t.TempDir(), "work")
	if err := f.w.Checkout(ctx, gitDir, merged, dest); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"a.txt": "from a\n", "b.txt": "from b\n", "VERSION": "2\n", "README.md": "base\n"} {
		if got := readFile(t, filepath.Join(dest, name)); got != content {
			t.Errorf("%s in the merged checkout = %q, want %q", name, got, content)
		}
	}
	// The last merge commit's parents are the first merge and feature-b, with fabu's identity.
	info := git(t, f.o.work, "--git-dir="+gitDir, "show", "-s", "--format=%P|%an <%ae>|%cn <%ce>", merged)
	parents, ident, _ := strings.Cut(info, "|")
	if p := strings.Fields(parents); len(p) != 2 || p[1] != f.b {
		t.Errorf("parents of the merged commit = %q, want <first merge> %s", parents, f.b)
	}
	if ident != "fabu <fabu@localhost>|fabu <fabu@localhost>" {
		t.Errorf("author|committer = %q, want fabu's fixed identity", ident)
	}
	// The run repository got the merge; the shared mirror did not.
	if _, err := f.w.revParse(ctx, f.mirror, merged); err != nil {
		t.Fatal(err)
	} else if c, _ := f.w.revParse(ctx, f.mirror, merged); c != "" {
		t.Errorf("merge commit %s was written into the shared mirror", merged)
	}

	// The same merge in another run repository, by name or by the recorded commits, gives
	// the same commit: reuse and the post-success actions depend on it.
	again, _, err := f.w.Merge(ctx, f.mirror, f.runRepo(t), f.main, []MergeRef{{Ref: "feature-a"}, {Ref: "refs/heads/feature-b"}})
	if err != nil || again != merged {
		t.Fatalf("second merge = %s, %v; want the same commit %s", again, err, merged)
	}
	recorded, _, err := f.w.Merge(ctx, f.mirror, f.runRepo(t), f.main, want)
	if err != nil || recorded != merged {
		t.Fatalf("merge of the recorded commits = %s, %v; want %s", recorded, err, merged)
	}
}

func TestMergeFastForwardAndUpToDate(t *testing.T) {
	ctx := context.Background()
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)
	// main is ahead of the commit it started from, which is therefore contained; feature-a
	// is not ahead of main, so it is merged, and main is contained in the result.
	parent := git(t, f.o.work, "rev-parse", f.main+"^")
	got, refs, err := f.w.Merge(ctx, f.mirror, gitDir, parent, []MergeRef{{Ref: "main"}, {Ref: parent}})
	if err != nil {
		t.Fatal(err)
	}
	if got != f.main || refs[0].Result != MergeResultFastForward || refs[1].Result != MergeResultUpToDate {
		t.Fatalf("Merge = %s %+v; want fast-forward to %s, then up-to-date", got, refs, f.main)
	}
	if _, _, err := f.w.MergeCommit(ctx, gitDir, f.main, f.a, "m", true); !errors.Is(err, ErrNotFastForward) {
		t.Fatalf("fast-forward-only merge of a diverged branch: error = %v, want ErrNotFastForward", err)
	}
}

func TestMergeConflictNamesTheFiles(t *testing.T) {
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)
	_, _, err := f.w.Merge(context.Background(), f.mirror, gitDir, f.main, []MergeRef{{Ref: "feature-a"}, {Ref: "hotfix"}})
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Merge error = %v, want a *ConflictError", err)
	}
	slices.Sort(ce.Files)
	if ce.Ref != "hotfix" || !slices.Equal(ce.Files, []string{"VERSION", "conf/app.yml"}) {
		t.Fatalf("conflict = ref %q files %q; want hotfix in VERSION, conf/app.yml", ce.Ref, ce.Files)
	}
	if msg := err.Error(); !strings.Contains(msg, "VERSION") || !strings.Contains(msg, "conf/app.yml") {
		t.Fatalf("conflict message %q does not name the files", msg)
	}
}

func TestMergeRefusesMissingAndHostileRefs(t *testing.T) {
	ctx := context.Background()
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)
	if _, _, err := f.w.Merge(ctx, f.mirror, gitDir, f.main, []MergeRef{{Ref: "no-such-branch"}}); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("merge of a missing branch: error = %v, want not_found", err)
	}
	missing := strings.Repeat("0", 40)
	if _, _, err := f.w.Merge(ctx, f.mirror, gitDir, f.main, []MergeRef{{Ref: "gone", Commit: missing}}); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("merge of a recorded commit that is gone: error = %v, want not_found", err)
	}

	w, ran := hostileGit(t)
	for _, ref := range []string{"main;id", "--upload-pack=touch /tmp/x", "../etc", "a..b", "$(id)", "-x", ""} {
		_, _, err := w.Merge(ctx, "/nonexistent/mirror.git", "/nonexistent/run.git", f.main, []MergeRef{{Ref: "ok"}, {Ref: ref}})
		if !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("Merge(%q) error = %v, want invalid", ref, err)
		}
	}
	if _, _, err := w.Merge(ctx, "/x", "/y", "main", nil); !apperr.Is(err, apperr.CodeInvalid) {
		t.Errorf("Merge onto a branch name instead of a commit: error = %v, want invalid", err)
	}
	if b, err := os.ReadFile(ran); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("git ran for hostile merge input: %q (read error %v)", b, err)
	}
}
