package workspace

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"fabu.dev/libs/apperr"
)

// fixture is a mirrored repository with two commits on main, a tag on the first and a
// branch whose name is all hex digits.
type fixture struct {
	w             *Workspace
	mirror        string
	first, second string
	hexed         string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	o := newOrigin(t)
	f := &fixture{w: &Workspace{Base: t.TempDir()}}
	f.first = o.commit("main", map[string]string{
		"README.md":      "first\n",
		"src/app.js":     "console.log(1)\n",
		"link":           "->src/app.js",
		".gitattributes": "secret.txt export-ignore\nversion.txt export-subst\n",
		"secret.txt":     "kept\n",
		"version.txt":    "$Format:%H$\n",
	})
	o.tag("v1.0", f.first)
	f.second = o.commit("main", map[string]string{"README.md": "second\n", "src/new.js": "2\n"})
	f.hexed = o.commit("cafe123", map[string]string{"hex.txt": "branch\n"})
	var err error
	if f.mirror, err = f.w.Mirror(context.Background(), "gitlab", "grp", "web", o.bare, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestResolve(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, ref, want string
		code            apperr.Code // "" when resolving must succeed
	}{
		{name: "branch", ref: "main", want: f.second},
		{name: "qualified branch", ref: "refs/heads/main", want: f.second},
		{name: "annotated tag peels to commit", ref: "v1.0", want: f.first},
		{name: "qualified tag", ref: "refs/tags/v1.0", want: f.first},
		{name: "full commit", ref: f.first, want: f.first},
		{name: "abbreviated commit", ref: f.first[:10], want: f.first},
		{name: "hex branch name wins over abbreviation", ref: "cafe123", want: f.hexed},
		{name: "missing branch", ref: "nope", code: apperr.CodeNotFound},
		{name: "missing full commit", ref: "0123456789012345678901234567890123456789", code: apperr.CodeNotFound},
		{name: "qualified missing tag", ref: "refs/tags/main", code: apperr.CodeNotFound},
		{name: "hostile", ref: "main;id", code: apperr.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.w.Resolve(context.Background(), f.mirror, tt.ref)
			if tt.code != "" {
				if !apperr.Is(err, tt.code) {
					t.Fatalf("Resolve(%q) = %q, %v; want error code %s", tt.ref, got, err, tt.code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
			}
		})
	}
}

func TestCheckoutMaterialisesExactCommit(t *testing.T) {
	f := newFixture(t)
	dest := filepath.Join(t.TempDir(), "runs", "r1")
	if err := f.w.Checkout(context.Background(), f.mirror, f.first, dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"README.md":   "first\n",
		"src/app.js":  "console.log(1)\n",
		"secret.txt":  "kept\n",        // export-ignore is switched off
		"version.txt": "$Format:%H$\n", // so is export-subst
	} {
		if got := readFile(t, filepath.Join(dest, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dest, "link")); err != nil || target != "src/app.js" {
		t.Errorf("link = %q, %v; want a symlink to src/app.js", target, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "src", "new.js")); !os.IsNotExist(err) {
		t.Errorf("src/new.js of the later commit exists in the checkout (stat error %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dest, ".git")); !os.IsNotExist(err) {
		t.Errorf("checkout has a .git (stat error %v)", err)
	}

	err := f.w.Checkout(context.Background(), f.mirror, f.second, dest)
	if !apperr.Is(err, apperr.CodeConflict) {
		t.Fatalf("Checkout into an existing directory: error = %v, want conflict", err)
	}
	if got := readFile(t, filepath.Join(dest, "README.md")); got != "first\n" {
		t.Fatalf("refused Checkout changed the existing directory: README.md = %q", got)
	}
}

func TestCheckoutRejectsAbbreviatedOrMissingCommits(t *testing.T) {
	f := newFixture(t)
	for _, commit := range []string{"main", f.first[:12], "--output=/tmp/x", "0000000000000000000000000000000000000000"} {
		dest := filepath.Join(t.TempDir(), "out")
		if err := f.w.Checkout(context.Background(), f.mirror, commit, dest); err == nil {
			t.Errorf("Checkout(%q) succeeded", commit)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Errorf("Checkout(%q) left %s behind (stat error %v)", commit, dest, err)
		}
	}
}

func TestConcurrentCheckoutsOfDifferentCommits(t *testing.T) {
	f := newFixture(t)
	base := t.TempDir()
	commits := map[string]string{"one": f.first, "two": f.second, "three": f.first, "four": f.second}
	var wg sync.WaitGroup
	errs := make(chan error, len(commits))
	for dir, commit := range commits {
		wg.Go(func() { errs <- f.w.Checkout(context.Background(), f.mirror, commit, filepath.Join(base, dir)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{f.first: "first\n", f.second: "second\n"}
	for dir, commit := range commits {
		if got := readFile(t, filepath.Join(base, dir, "README.md")); got != want[commit] {
			t.Errorf("%s/README.md = %q, want %q", dir, got, want[commit])
		}
	}
}

func TestCleanupRemovesReadOnlyTrees(t *testing.T) {
	f := newFixture(t)
	dest := filepath.Join(t.TempDir(), "run")
	if err := f.w.Checkout(context.Background(), f.mirror, f.second, dest); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dest, "src")
	if err := os.Chmod(locked, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := f.w.Cleanup(dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("checkout still exists after Cleanup (stat error %v)", err)
	}
}
