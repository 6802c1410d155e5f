package tickets

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ResolveRemote asks a repository behind HTTP basic auth with the credentials in the
// project's URL, and the password never reaches git's argv (readable by every local user).
func TestResolveRemoteKeepsCredentialsOffArgv(t *testing.T) {
	const password = "s3cret-t0ken"
	root := t.TempDir()
	bare := filepath.Join(root, "app.git")
	work := t.TempDir()
	run := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(work, "init", "-q", "-b", "main")
	run(work, "commit", "-q", "--allow-empty", "-m", "one")
	want := run(work, "rev-parse", "HEAD")
	run(root, "clone", "-q", "--bare", work, bare)

	execPath := run(root, "--exec-path")
	backend := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"), Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "deploy" || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// A git first in PATH that records its argv, then runs the real one.
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	bin, argvLog := t.TempDir(), filepath.Join(t.TempDir(), "argv")
	wrapper := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + argvLog + "'\nexec '" + realGit + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	url := strings.Replace(srv.URL, "http://", "http://deploy:"+password+"@", 1) + "/app.git"
	got, err := ResolveRemote(context.Background(), url, "main")
	if err != nil || got != want {
		t.Fatalf("ResolveRemote over authenticated HTTP = %q, %v; want %s", got, err, want)
	}
	argv, err := os.ReadFile(argvLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(argv), "ls-remote") || strings.Contains(string(argv), password) {
		t.Errorf("git argv = %q: want ls-remote, without the password", argv)
	}
	if _, err := ResolveRemote(context.Background(), strings.Replace(url, password, "wrong", 1), "main"); err == nil {
		t.Error("ResolveRemote with a wrong password succeeded")
	}
}
