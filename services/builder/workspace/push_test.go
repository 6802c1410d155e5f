package workspace

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

func TestPushTagAndBranchLandInTheRemote(t *testing.T) {
	ctx := context.Background()
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)
	merged, _, err := f.w.Merge(ctx, f.mirror, gitDir, f.main, []MergeRef{{Ref: "feature-a"}})
	if err != nil {
		t.Fatal(err)
	}
	// The merge commit exists only in the run repository; pushing it sends its objects.
	err = f.w.Push(ctx, gitDir, f.o.bare, []RefUpdate{
		{Commit: merged, Ref: "refs/tags/release-1"},
		{Commit: merged, Ref: "refs/heads/main"}, // main is merged's first parent: a fast-forward
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"refs/tags/release-1", "refs/heads/main"} {
		if got := git(t, f.o.work, "--git-dir="+f.o.bare, "rev-parse", ref); got != merged {
			t.Errorf("remote %s = %s, want %s", ref, got, merged)
		}
	}
}

func TestPushRefusedByTheRemote(t *testing.T) {
	ctx := context.Background()
	f := newMergeFixture(t)
	gitDir := f.runRepo(t)

	// Not a fast-forward: main moved past feature-a's fork point, and pushes are never forced.
	err := f.w.Push(ctx, gitDir, f.o.bare, []RefUpdate{{Commit: f.a, Ref: "refs/heads/main"}}, nil)
	var pr *PushRefusedError
	if !errors.As(err, &pr) || pr.Ref != "refs/heads/main" || !strings.Contains(pr.Reason, "non-fast-forward") {
		t.Fatalf("non-fast-forward push: error = %v, want refused (non-fast-forward) for refs/heads/main", err)
	}
	if got := git(t, f.o.work, "--git-dir="+f.o.bare, "rev-parse", "refs/heads/main"); got != f.main {
		t.Fatalf("remote main = %s after a refused push, want it unchanged at %s", got, f.main)
	}
	// An existing tag is not moved.
	if err := f.w.Push(ctx, gitDir, f.o.bare, []RefUpdate{{Commit: f.main, Ref: "refs/tags/v1"}}, nil); err != nil {
		t.Fatal(err)
	}
	err = f.w.Push(ctx, gitDir, f.o.bare, []RefUpdate{{Commit: f.a, Ref: "refs/tags/v1"}}, nil)
	if !errors.As(err, &pr) || !strings.Contains(pr.Reason, "already exists") {
		t.Fatalf("push of an existing tag: error = %v, want refused (already exists)", err)
	}
	// The remote's own hook declines.
	hook := filepath.Join(f.o.bare, "hooks", "pre-receive")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'protected by policy' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = f.w.Push(ctx, gitDir, f.o.bare, []RefUpdate{{Commit: f.a, Ref: "refs/tags/v2"}}, nil)
	if !errors.As(err, &pr) || !strings.Contains(pr.Reason, "hook declined") {
		t.Fatalf("push declined by pre-receive: error = %v, want refused (hook declined)", err)
	}
}

func TestPushRefusesBadInputBeforeGitRuns(t *testing.T) {
	w, ran := hostileGit(t)
	good := strings.Repeat("a", 40)
	for name, u := range map[string]RefUpdate{
		"short commit":     {Commit: "abc1234", Ref: "refs/tags/x"},
		"branch as commit": {Commit: "main", Ref: "refs/tags/x"},
		"force prefix":     {Commit: good, Ref: "+refs/heads/main"},
		"not heads/tags":   {Commit: good, Ref: "refs/notes/x"},
		"bare name":        {Commit: good, Ref: "main"},
		"hostile ref":      {Commit: good, Ref: "refs/tags/x;id"},
		"traversal":        {Commit: good, Ref: "refs/heads/../../x"},
	} {
		if err := w.Push(context.Background(), "/x.git", "/srv/x.git", []RefUpdate{u}, nil); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("%s: Push error = %v, want invalid", name, err)
		}
	}
	if err := w.Push(context.Background(), "/x.git", "--upload-pack=id", []RefUpdate{{Commit: good, Ref: "refs/tags/x"}}, nil); !apperr.Is(err, apperr.CodeInvalid) {
		t.Errorf("Push to an option-like URL: error = %v, want invalid", err)
	}
	if b, err := os.ReadFile(ran); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("git ran for bad push input: %q (read error %v)", b, err)
	}
}

// gitHTTPServer serves the bare repositories under root with git http-backend (smart HTTP,
// fetch and push) behind basic authentication, like a forge does.
func gitHTTPServer(t *testing.T, root, user, pass string) *httptest.Server {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Root: "/",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A repository behind HTTP basic auth: the mirror fetch and the push both authenticate with
// the credentials in the project's URL, and the password appears in no git argv, not in
// the mirror's config and not in git's output.
func TestCredentialsReachGitOnlyThroughItsEnvironment(t *testing.T) {
	ctx := context.Background()
	const password = "s3cret-t0ken"
	o := newOrigin(t)
	first := o.commit("main", map[string]string{"a.txt": "1\n"})
	git(t, o.work, "--git-dir="+o.bare, "config", "http.receivepack", "true")
	srv := gitHTTPServer(t, filepath.Dir(o.bare), "deploy", password)

	argvLog := filepath.Join(t.TempDir(), "argv")
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	w := &Workspace{Base: t.TempDir(), Git: script(t, "printf '%s\\n' \"$*\" >> '"+argvLog+"'\nexec '"+realGit+"' \"$@\"\n")}
	url := strings.Replace(srv.URL, "http://", "http://deploy:"+password+"@", 1) + "/origin.git"

	var log bytes.Buffer
	mirror, err := w.Mirror(ctx, "gitlab", "ns", "app", url, &log)
	if err != nil {
		t.Fatalf("Mirror over authenticated HTTP: %v\n%s", err, log.String())
	}
	second := o.commit("main", map[string]string{"a.txt": "2\n"})
	if _, err := w.Mirror(ctx, "gitlab", "ns", "app", url, &log); err != nil { // the incremental fetch
		t.Fatalf("second Mirror: %v\n%s", err, log.String())
	}
	if got, err := w.Resolve(ctx, mirror, "main"); err != nil || got != second {
		t.Fatalf("Resolve(main) = %s, %v; want %s", got, err, second)
	}
	if err := w.Push(ctx, mirror, url, []RefUpdate{{Commit: first, Ref: "refs/tags/release-1"}}, &log); err != nil {
		t.Fatalf("Push over authenticated HTTP: %v\n%s", err, log.String())
	}
	if got := git(t, o.work, "--git-dir="+o.bare, "rev-parse", "refs/tags/release-1"); got != first {
		t.Fatalf("remote tag = %s, want %s", got, first)
	}

	argv := readFile(t, argvLog)
	config := readFile(t, filepath.Join(mirror, "config"))
	for what, text := range map[string]string{"git argv": argv, "mirror config": config, "git output": log.String()} {
		if strings.Contains(text, password) {
			t.Errorf("the password appears in the %s:\n%s", what, text)
		}
	}
	if !strings.Contains(argv, "push") || !strings.Contains(argv, srv.URL+"/origin.git") {
		t.Fatalf("the argv log does not show the push to the clean URL:\n%s", argv)
	}

	// A wrong password fails, and says nothing of the password either.
	bad := strings.Replace(url, password, "wrong", 1)
	err = w.Push(ctx, mirror, bad, []RefUpdate{{Commit: second, Ref: "refs/tags/release-2"}}, &log)
	if err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("push error shows the password: %v", err)
	}
}
