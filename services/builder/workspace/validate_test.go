package workspace

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"fabu.dev/libs/apperr"
)

// hostileGit is a Workspace whose git records that it ran, so tests can show that bad input
// is refused before any process starts.
func hostileGit(t *testing.T) (*Workspace, string) {
	t.Helper()
	ran := filepath.Join(t.TempDir(), "git-ran")
	return &Workspace{Base: t.TempDir(), Git: script(t, "echo \"$@\" >> '"+ran+"'\nexit 0\n")}, ran
}

func TestHostileInputRejectedBeforeGitRuns(t *testing.T) {
	ctx := context.Background()
	w, ran := hostileGit(t)
	refs := []string{"main;id", "$(id)", "`id`", "a b", "--upload-pack=x", "-x", "a..b",
		"main\nid", "a|b", "x@{0}", "refs/heads/../../etc", "", "HEAD", "a>b", "\xff"}
	for _, ref := range refs {
		t.Run("Resolve "+ref, func(t *testing.T) {
			_, err := w.Resolve(ctx, "/nonexistent/mirror.git", ref)
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("Resolve(%q) error = %v, want invalid", ref, err)
			}
		})
	}
	mirrors := []struct{ name, platform, namespace, project, url string }{
		{"platform traversal", "..", "ns", "p", "/x"},
		{"dot platform", ".home", "ns", "p", "/x"},
		{"namespace traversal", "gitlab", "a/../../b", "p", "/x"},
		{"absolute namespace", "gitlab", "/etc", "p", "/x"},
		{"empty subgroup", "gitlab", "a//b", "p", "/x"},
		{"project with slash", "gitlab", "ns", "a/b", "/x"},
		{"project with semicolon", "gitlab", "ns", "p;id", "/x"},
		{"project named like the mirror", "gitlab", "ns", "mirror.git", "/x"},
		{"namespace named like the lock", "gitlab", "mirror.lock", "p", "/x"},
		{"url as option", "gitlab", "ns", "p", "--upload-pack=touch /tmp/pwned"},
		{"ext transport", "gitlab", "ns", "p", "ext::sh -c id"},
		{"fd transport", "gitlab", "ns", "p", "fd::3"},
		{"url with newline", "gitlab", "ns", "p", "https://h/x\n.git"},
	}
	for _, m := range mirrors {
		t.Run("Mirror "+m.name, func(t *testing.T) {
			_, err := w.Mirror(ctx, m.platform, m.namespace, m.project, m.url, nil)
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("Mirror(%q, %q, %q, %q) error = %v, want invalid", m.platform, m.namespace, m.project, m.url, err)
			}
		})
	}
	if err := w.Checkout(ctx, "/nonexistent/mirror.git", "$(id)", filepath.Join(t.TempDir(), "d")); !apperr.Is(err, apperr.CodeInvalid) {
		t.Fatalf("Checkout($(id)) error = %v, want invalid", err)
	}
	if b, err := os.ReadFile(ran); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("git ran for hostile input: %q (read error %v)", b, err)
	}
}

func TestValidURLAcceptsOrdinaryURLs(t *testing.T) {
	for _, url := range []string{
		"https://gitlab.example.com/group/sub/app.git", "git@github.com:org/app.git",
		"ssh://git@gitee.com:22/org/app.git", "/srv/git/app.git", "https://user:tok@h/x.git",
	} {
		if err := validURL(url); err != nil {
			t.Errorf("validURL(%q) = %v, want nil", url, err)
		}
	}
}
