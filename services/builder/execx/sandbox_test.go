package execx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"fabu.dev/libs/testenv"
)

// requireSandbox returns a sandbox hiding hide, or fails saying how to get bubblewrap.
func requireSandbox(t *testing.T, cfg SandboxConfig) *Sandbox {
	t.Helper()
	sb, err := NewSandbox(cfg)
	if errors.Is(err, ErrNoBwrap) {
		t.Fatalf("the sandbox tests need bubblewrap: apt-get install bubblewrap (make test installs it)")
	}
	if err != nil {
		t.Fatalf("NewSandbox: %v", err)
	}
	return sb
}

// sandboxed is spec(…) run in sb, its checkout and HOME owned by the sandbox's user.
func sandboxed(t *testing.T, sb *Sandbox, name string, argv ...string) (Spec, *buffer) {
	t.Helper()
	s, out := spec(t, name, argv...)
	s.Sandbox = sb
	s.Path = DefaultPath
	if err := os.MkdirAll(s.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sb.Own(s.Root, s.Home); err != nil {
		t.Fatal(err)
	}
	return s, out
}

// A hostile stage tries what a build must never manage: read fabu's master key, SSH key,
// database and config (placed both outside and inside the read-only trees), read the
// builder's environment through /proc, see other processes, write outside its checkout,
// act as root. Each attempt prints a marker when it succeeds.
func TestSandboxStageSeesNothingOfFabu(t *testing.T) {
	const canary = "fabu-canary-7f3a9c"
	t.Setenv("FABU_ADMIN_PASSWORD", canary) // the builder's own environment

	// A data dir outside the sandbox's trees, as with --data-dir /var/lib/fabu.
	data := t.TempDir()
	for name, content := range map[string]string{"master.key": canary, "fabu.db": canary, "ssh/id_ed25519": canary} {
		writeFile(t, filepath.Join(data, name), content)
	}
	// And one under a read-only tree, as with a data dir or config under /opt or /etc.
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "fabu", "master.key"), canary)
	writeFile(t, filepath.Join(tree, "fabu.yaml"), canary)
	writeFile(t, filepath.Join(tree, "toolchain", "bin", "ok"), "toolchain")
	otherRun := t.TempDir()
	writeFile(t, filepath.Join(otherRun, "src", "secret.txt"), canary)

	sb := requireSandbox(t, SandboxConfig{ExtraReadOnly: []string{tree}, Hide: []string{data, filepath.Join(tree, "fabu"), filepath.Join(tree, "fabu.yaml"), otherRun}})
	script := fmt.Sprintf(`
for f in %[1]s/master.key %[1]s/fabu.db %[1]s/ssh/id_ed25519 %[2]s/fabu/master.key %[2]s/fabu.yaml %[3]s/src/secret.txt; do
  cat "$f" 2>/dev/null | grep -q %[4]s && echo "LEAK read $f"
done
grep -q toolchain %[2]s/toolchain/bin/ok && echo "toolchain visible"
for e in /proc/[0-9]*/environ; do grep -qa %[4]s "$e" 2>/dev/null && echo "LEAK environ $e"; done
ls -d /proc/[0-9]* | wc -l | sed 's/^/processes: /'
[ -d /proc/%[5]d ] && grep -qa 'execx.test' /proc/%[5]d/cmdline 2>/dev/null && echo "LEAK sees the builder process"
for d in /usr /etc /opt %[2]s; do touch "$d/fabu-wrote-here" 2>/dev/null && echo "LEAK wrote $d"; done
touch /tmp/private && echo "tmp writable"
echo "uid $(id -u) gid $(id -g)"
touch ./made-in-checkout && echo "checkout writable"
touch "$HOME/made-in-home" && echo "home writable"
`, data, tree, otherRun, canary, os.Getpid())
	s, out := sandboxed(t, sb, "attack", "/bin/sh", "-c", script)
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	got := out.String()
	if strings.Contains(got, "LEAK") || strings.Contains(got, canary) {
		t.Errorf("the stage got through:\n%s", got)
	}
	for _, want := range []string{"toolchain visible", "tmp writable", "checkout writable", "home writable"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q: the sandbox must leave toolchains, /tmp, checkout and HOME usable:\n%s", want, got)
		}
	}
	if n := processes(t, got); n > 6 { // sh, ls, wc, sed and bubblewrap's init
		t.Errorf("the stage sees %d processes, want only its own few:\n%s", n, got)
	}
	if strings.Contains(got, "uid 0 ") || strings.Contains(got, "gid 0\n") {
		t.Errorf("the stage runs as root:\n%s", got)
	}
	if _, err := os.Stat("/tmp/private"); err == nil && os.Geteuid() == 0 {
		// Another process may have made it; only its owner tells.
		if fi, _ := os.Stat("/tmp/private"); fi != nil && fi.ModTime().After(time.Now().Add(-time.Minute)) {
			t.Errorf("the stage's /tmp is the host's")
		}
	}
	if _, err := os.Stat(filepath.Join(s.Root, "made-in-checkout")); err != nil {
		t.Errorf("the checkout is not the host's checkout: %v", err)
	}
}

// As root, the builder runs stages as an unprivileged user outside the sandbox too, so
// files it writes belong to that user, and a root-only file under a visible tree stays
// unreadable.
func TestSandboxStageIsNotRootOutside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the builder is not root here; its stages run as its own unprivileged user")
	}
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "root-only"), "secret")
	if err := os.Chmod(filepath.Join(tree, "root-only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	sb := requireSandbox(t, SandboxConfig{ExtraReadOnly: []string{tree}})
	s, out := sandboxed(t, sb, "who", "/bin/sh", "-c", "cat "+tree+"/root-only && echo LEAK; echo x > made")
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if strings.Contains(out.String(), "LEAK") {
		t.Errorf("the stage read a root-only file:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(s.Root, "made"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != DefaultSandboxUID {
		t.Errorf("a file the stage wrote belongs to uid %d, want %d", st.Uid, DefaultSandboxUID)
	}
}

func TestSandboxNetworkOff(t *testing.T) {
	sb := requireSandbox(t, SandboxConfig{})
	s, out := sandboxed(t, sb, "net", "/bin/sh", "-c", "ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
	s.NoNetwork = true
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if got := strings.Fields(out.String()); len(got) != 1 || got[0] != "lo" {
		t.Errorf("interfaces without network = %q, want only lo", got)
	}
	s, out = sandboxed(t, sb, "net", "/bin/sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if got := strings.Fields(out.String()); len(got) < 2 {
		t.Errorf("interfaces with network = %q, want the host's", got)
	}
}

// Cancelling a sandboxed stage kills everything it started, a process that left its
// process group included.
func TestSandboxCancelKillsEverything(t *testing.T) {
	sb := requireSandbox(t, SandboxConfig{})
	marker := "31" + strconv.Itoa(os.Getpid()%1000) + ".25"
	s, _ := sandboxed(t, sb, "spawn", "/bin/sh", "-c", "sleep "+marker+" & setsid sleep "+marker+" & sleep "+marker)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, s); done <- err }()
	eventually(t, 10*time.Second, "three sleeps running", func() bool { return len(testenv.PIDsOf("sleep "+marker)) == 3 })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run of a cancelled stage returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	eventually(t, 5*time.Second, "no sleep left", func() bool { return len(testenv.PIDsOf("sleep "+marker)) == 0 })
}

// A stage dies with the builder even when the builder is killed with SIGKILL and cannot
// clean up: the test runs a stage from a child process (this test binary again) and
// kills that child.
func TestSandboxStageDiesWithKilledBuilder(t *testing.T) {
	if os.Getenv("FABU_EXECX_CHILD") != "" {
		sb := requireSandbox(t, SandboxConfig{})
		s, _ := sandboxed(t, sb, "orphan", "/bin/sh", "-c", "setsid sleep "+os.Getenv("FABU_EXECX_CHILD")+" & sleep "+os.Getenv("FABU_EXECX_CHILD"))
		_, _ = Run(context.Background(), s)
		return
	}
	requireSandbox(t, SandboxConfig{})
	marker := "32" + strconv.Itoa(os.Getpid()%1000) + ".5"
	child := exec.Command(os.Args[0], "-test.run=^TestSandboxStageDiesWithKilledBuilder$", "-test.count=1")
	child.Env = append(os.Environ(), "FABU_EXECX_CHILD="+marker)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the stage's sleeps running", func() bool { return len(testenv.PIDsOf("sleep "+marker)) == 2 })
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	eventually(t, 5*time.Second, "no stage process outliving the killed builder", func() bool { return len(testenv.PIDsOf("sleep "+marker)) == 0 })
}

// Without bubblewrap the sandbox is refused with how to install it.
func TestNewSandboxWithoutBwrap(t *testing.T) {
	_, err := NewSandbox(SandboxConfig{Bwrap: filepath.Join(t.TempDir(), "bwrap")})
	if !errors.Is(err, ErrNoBwrap) || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Errorf("NewSandbox without bwrap = %v, want ErrNoBwrap saying how to install it", err)
	}
}

func TestNewSandboxRefusesRootAndBadPaths(t *testing.T) {
	tests := []struct {
		name string
		cfg  SandboxConfig
	}{
		{"relative read-only", SandboxConfig{ExtraReadOnly: []string{"usr"}}},
		{"whole file system", SandboxConfig{ReadOnly: []string{"/"}}},
		{"unclean", SandboxConfig{ExtraReadOnly: []string{"/opt/../root"}}},
		{"relative hide", SandboxConfig{Hide: []string{"data"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSandbox(tt.cfg); err == nil {
				t.Errorf("NewSandbox(%+v) = nil error", tt.cfg)
			}
		})
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func processes(t *testing.T, out string) int {
	t.Helper()
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "processes: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad process count %q", v)
			}
			return n
		}
	}
	t.Fatalf("no process count in:\n%s", out)
	return 0
}
