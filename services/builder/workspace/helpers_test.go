package workspace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitEnv is the environment of the tests' own git commands: no user or system config.
func gitEnv(t *testing.T) []string {
	t.Helper()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
	}
}

// git runs git in dir as a test fixture step and returns its trimmed stdout.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "user.name=fabu test", "-c", "user.email=test@fabu.dev",
		"-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// origin is a bare repository with a working clone that pushes into it.
type origin struct {
	t    *testing.T
	bare string // the URL to mirror
	work string
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	dir := t.TempDir()
	o := &origin{t: t, bare: filepath.Join(dir, "origin.git"), work: filepath.Join(dir, "work")}
	git(t, dir, "init", "--quiet", "--bare", o.bare)
	git(t, dir, "init", "--quiet", o.work)
	git(t, o.work, "remote", "add", "origin", o.bare)
	return o
}

// commit writes files (name → content; "->target" makes a symlink) in the working clone,
// commits and pushes branch, and returns the new commit id.
func (o *origin) commit(branch string, files map[string]string) string {
	o.t.Helper()
	git(o.t, o.work, "checkout", "--quiet", "-B", branch)
	for name, content := range files {
		p := filepath.Join(o.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			o.t.Fatal(err)
		}
		_ = os.Remove(p)
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			o.t.Fatal(err)
		}
	}
	git(o.t, o.work, "add", "--all")
	git(o.t, o.work, "commit", "--quiet", "--allow-empty", "-m", "change "+branch)
	git(o.t, o.work, "push", "--quiet", "origin", branch)
	return git(o.t, o.work, "rev-parse", "HEAD")
}

// tag makes an annotated tag of commit and pushes it.
func (o *origin) tag(name, commit string) {
	o.t.Helper()
	git(o.t, o.work, "tag", "-a", "-m", "release "+name, name, commit)
	git(o.t, o.work, "push", "--quiet", "origin", "refs/tags/"+name)
}

// script writes an executable shell script for use as Workspace.Git.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-git")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
