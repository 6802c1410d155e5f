// Package containertest gives tests real container tooling: rootful podman, Debian's
// docker-registry on a loopback port (optionally behind htpasswd), and build contexts of
// FROM-scratch images holding a static busybox, since no public registry is reachable from
// tests. scripts/test-deps.sh installs what it needs.
package containertest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"fabu.dev/libs/testenv"
)

// Busybox is the static busybox put into test images.
const Busybox = "/bin/busybox"

// Require skips t when it cannot run rootful podman (not root), saying why; as root, a
// missing podman, docker-registry or static busybox fails t with how to install it, like
// every other missing test dependency (testenv.Missing; FABU_TEST_SKIP_MISSING=1 skips).
// scripts/test-deps.sh installs them all.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("container tests need root for rootful podman; run them as root after scripts/test-deps.sh")
	}
	const how = "run scripts/test-deps.sh as root (apt-get install -y podman runc docker-registry busybox-static)"
	for _, tool := range []string{"podman", "docker-registry"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool, how, err)
		}
	}
	out, err := exec.Command("ldd", Busybox).CombinedOutput()
	if !strings.Contains(string(out), "not a dynamic") {
		testenv.Missing(t, "a static "+Busybox+" for FROM-scratch images", how, fmt.Errorf("ldd %s: %s: %w", Busybox, strings.TrimSpace(string(out)), err))
	}
}

// Registry is a running docker-registry.
type Registry struct {
	Addr string // 127.0.0.1:port
	User string // "" without authentication
	Pass string
}

// StartRegistry runs docker-registry on a free loopback port for the rest of t, behind
// htpasswd authentication when user is not "".
func StartRegistry(t testing.TB, user, pass string) Registry {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: fabu-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = logf.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close()
			return Registry{Addr: addr, User: user, Pass: pass}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// Get fetches path (such as /v2/team/app/tags/list) from the registry with its credentials
// and returns the status and body.
func (r Registry) Get(t testing.TB, path string, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+r.Addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// BusyboxContext returns files of a build context (Dockerfile included) for an image that
// serves body as /index.html over HTTP on port listen inside the container.
func BusyboxContext(t testing.TB, body string, listen int) map[string]string {
	t.Helper()
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"busybox":        string(bb),
		"www/index.html": body,
		"Dockerfile": fmt.Sprintf("FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\nCOPY www /www\n"+
			"CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"%d\", \"-h\", \"/www\"]\n", listen),
	}
}

// WriteContext writes files into dir.
func WriteContext(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// Podman runs podman with args in dir and returns its trimmed output; failure fails t.
func Podman(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("podman", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
