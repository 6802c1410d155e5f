package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeFile validates deploy/compose/compose.yaml with Debian's docker-compose (no
// Docker engine runs here) and checks that each service runs from the one image with its
// own `fabu serve` command next to PostgreSQL, Redis and Kafka in KRaft mode.
func TestComposeFile(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose missing (apt-get install -y docker-compose): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "deploy", "compose", "compose.yaml")
	// Without a master key the file refuses to resolve: secrets must never be sealed with
	// a key nobody kept.
	cmd := exec.Command(bin, "-f", path, "config")
	cmd.Env = append(os.Environ(), "FABU_MASTER_KEY=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "FABU_MASTER_KEY") {
		t.Errorf("docker-compose config without FABU_MASTER_KEY = %v %s, want it refused", err, out)
	}
	cmd = exec.Command(bin, "-f", path, "config")
	cmd.Env = append(os.Environ(), "FABU_MASTER_KEY=c2VjcmV0LWtleS1mb3ItdGhlLWNvbXBvc2UtdGVzdA==")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			SecurityOpt []string          `yaml:"security_opt"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parse resolved compose file: %v", err)
	}
	for _, s := range []string{"auth", "gateway", "webhook", "builder", "deployer", "notifier"} {
		svc, ok := doc.Services[s]
		if !ok {
			t.Errorf("service %s missing", s)
			continue
		}
		if svc.Image != "fabu:latest" || len(svc.Command) < 2 || svc.Command[0] != "serve" || svc.Command[1] != s {
			t.Errorf("service %s: image %q command %v, want fabu:latest serve %s", s, svc.Image, svc.Command, s)
		}
		if !strings.HasPrefix(svc.Environment["FABU_POSTGRES"], "postgres://") || svc.Environment["FABU_KAFKA"] == "" {
			t.Errorf("service %s lacks its PostgreSQL or Kafka settings", s)
		}
	}
	if doc.Services["kafka"].Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Errorf("kafka is not a KRaft broker+controller")
	}
	// The builder's sandbox (bubblewrap) needs the package in the image and namespaces that
	// Docker's default seccomp profile forbids.
	if opts := strings.Join(doc.Services["builder"].SecurityOpt, " "); !strings.Contains(opts, "seccomp=unconfined") {
		t.Errorf("builder security_opt %q: bubblewrap cannot create its namespaces under Docker's default seccomp profile", opts)
	}
	dockerfile, err := os.ReadFile(filepath.Join(filepath.Dir(path), "Dockerfile"))
	if err != nil || !strings.Contains(string(dockerfile), "bubblewrap") {
		t.Errorf("the image does not install bubblewrap, so its builder refuses every build (%v)", err)
	}
	for _, s := range []string{"postgres", "redis", "migrate"} {
		if _, ok := doc.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
}
