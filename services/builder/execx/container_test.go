package execx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/container/containertest"
)

// stageImage builds a FROM-scratch image holding a static busybox (no registry is
// reachable from tests) and returns its local reference.
func stageImage(t *testing.T) string {
	t.Helper()
	containertest.Require(t)
	dir := t.TempDir()
	bb, err := os.ReadFile(containertest.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	containertest.WriteContext(t, dir, map[string]string{
		"busybox":    string(bb),
		"Dockerfile": "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\n",
	})
	const ref = "localhost/fabu-stage-test:1"
	containertest.Podman(t, dir, "build", "-q", "-t", ref, ".")
	return ref
}

// A stage with an image runs in that image: the image's own tools, the checkout writable
// at its path, the declared variables and secrets in its environment (never on the CLI's
// command line), the sandbox's user, and the container gone afterwards.
func TestContainerStageRunsInItsImage(t *testing.T) {
	image := stageImage(t)
	c := &Container{CLI: "podman", Label: "test-" + t.Name(), UID: DefaultSandboxUID, GID: DefaultSandboxUID}
	s, out := spec(t, "test", "sh", "-c", `echo "greeting=$GREETING token=$TOKEN home=$HOME"; id -u; ls /bin/busybox; echo made > made.txt; pwd`)
	s.Image, s.Container = image, c
	s.Env = map[string]string{"GREETING": "hello world"}
	s.Secrets = map[string]string{"TOKEN": "s3cr3t-token"}
	sb := requireSandbox(t, SandboxConfig{})
	if err := os.MkdirAll(s.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sb.Own(s.Root, s.Home); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	got := out.String()
	for _, want := range []string{"greeting=hello world token=s3cr3t-token home=" + s.Home, "/bin/busybox", s.Root} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(got, "\n65534\n") {
		t.Errorf("the container stage does not run as the sandbox's user:\n%s", got)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root, "made.txt")); err != nil || string(b) != "made\n" {
		t.Errorf("made.txt in the checkout = %q, %v", b, err)
	}
	if left := containersLabelled(t, c.Label); left != "" {
		t.Errorf("containers left after the stage: %s", left)
	}
}

// Cancelling a container stage removes its container; Sweep removes what a killed
// builder left.
func TestContainerStageCancelAndSweep(t *testing.T) {
	image := stageImage(t)
	c := &Container{CLI: "podman", Label: "test-" + t.Name(), UID: -1, GID: -1}
	s, _ := spec(t, "slow", "sleep", "300")
	s.Image, s.Container = image, c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, s); done <- err }()
	eventually(t, 60*time.Second, "the stage's container running", func() bool { return containersLabelled(t, c.Label) != "" })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run of a cancelled stage returned no error")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if left := containersLabelled(t, c.Label); left != "" {
		t.Errorf("containers left after cancel: %s", left)
	}

	// A container of a builder that died: started behind fabu's back with its label.
	containertest.Podman(t, "", "run", "-d", "--label", containerLabel+"="+c.Label, image, "sleep", "300")
	if err := c.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := containersLabelled(t, c.Label); left != "" {
		t.Errorf("containers left after Sweep: %s", left)
	}
}

func TestContainerStageBadInput(t *testing.T) {
	c := &Container{CLI: "podman", Label: "x", UID: -1, GID: -1}
	tests := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"multi-line variable", func(s *Spec) { s.Secrets = map[string]string{"KEY": "a\nb"} }, "line break"},
		{"option as command", func(s *Spec) { s.Argv = []string{"--privileged"} }, "must not start with '-'"},
		{"no container CLI", func(s *Spec) { s.Container = nil }, "no container CLI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := spec(t, "bad", "true")
			s.Image, s.Container = "busybox:1", c
			tt.edit(&s)
			_, err := Run(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func containersLabelled(t *testing.T, label string) string {
	t.Helper()
	out, err := exec.Command("podman", "ps", "-aq", "--filter", "label="+containerLabel+"="+label).Output()
	if err != nil {
		t.Fatalf("podman ps: %v", err)
	}
	return strings.TrimSpace(string(out))
}
