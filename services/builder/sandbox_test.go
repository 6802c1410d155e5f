package builder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/container/containertest"
	"fabu.dev/libs/runs"
	"fabu.dev/services/builder/execx"
)

// Without a working bubblewrap the builder runs no build unisolated: the run fails saying
// how to install it, and readiness reports the sandbox.
func TestBuildRefusedWithoutSandbox(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", ".", "s1", nil)
	e.repo.commit("main", map[string]string{".fabu.yml": "stages:\n  - {name: hi, run: [echo, hi]}\nartifact:\n  dir: .\n"})
	cfg := e.config("")
	cfg.Sandbox = execx.SandboxConfig{Bwrap: filepath.Join(t.TempDir(), "bwrap")}
	b := e.start(cfg, e.co)
	id := e.request("p1", "main")
	r := e.waitStatus(id, runs.StatusFailed)
	if !strings.Contains(r.Error, "apt-get install bubblewrap") || strings.Contains(e.logOf(id), "▶ stage") {
		t.Errorf("run error %q, want the sandbox's refusal saying how to install bubblewrap, and no stage run", r.Error)
	}
	var ready error
	for _, c := range b.s.Checks() {
		if err := c.Fn(context.Background()); err != nil {
			ready = err
		}
	}
	if ready == nil {
		t.Errorf("readiness passes without a sandbox")
	}
}

// --build-sandbox=none is an explicit opt-out, and every run's log says so.
func TestBuildWithoutSandboxWarns(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", ".", "s1", nil)
	e.repo.commit("main", map[string]string{".fabu.yml": "stages:\n  - {name: hi, run: [echo, hi]}\nartifact:\n  dir: .\n"})
	cfg := e.config("")
	cfg.BuildSandbox = SandboxNone
	e.start(cfg, e.co)
	id := e.request("p1", "main")
	e.waitStatus(id, runs.StatusDeploying)
	if log := e.logOf(id); !strings.Contains(log, "warning: build stages run without a sandbox") {
		t.Errorf("log lacks the warning:\n%s", log)
	}
}

// Maven takes its home from the user database, not $HOME: fabu points it at the run's
// HOME, so ~/.m2 is the run's and is saved with its caches, sandboxed or not.
func TestMavenUsesTheRunsHome(t *testing.T) {
	for _, mode := range []string{SandboxBwrap, SandboxNone} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, backends[0])
			e.buildProject("p1", "java-jar", ".", "s1", nil)
			e.repo.commit("main", map[string]string{
				"pom.xml": `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>` +
					`<groupId>demo</groupId><artifactId>app</artifactId><version>1</version><packaging>pom</packaging></project>`,
				"package.sh": "mkdir -p target && echo jar > target/app.jar\n",
				".fabu.yml": "stages:\n  - {name: validate, run: [mvn, -B, -o, validate]}\n" +
					"  - {name: package, run: [sh, package.sh]}\nartifact:\n  file: target/*.jar\n",
			})
			cfg := e.config("")
			cfg.BuildSandbox = mode
			e.start(cfg, e.co)
			id := e.request("p1", "main")
			if r := e.waitStatus(id, runs.StatusDeploying); r.Status != runs.StatusDeploying {
				t.Fatalf("run %+v", r)
			}
			if log := e.logOf(id); !strings.Contains(log, "cache ~/.m2/repository: saved 1 paths") {
				t.Errorf("Maven's repository was not the run's (not saved with its caches):\n%s", log)
			}
		})
	}
}

// A project's build_offline runs its stages without a network: only loopback.
func TestBuildOffline(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", ".", "s1", map[string]any{"build_offline": true})
	e.repo.commit("main", map[string]string{
		"net.sh":    "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sed s/^/iface:/\n",
		".fabu.yml": "stages:\n  - {name: net, run: [sh, net.sh]}\nartifact:\n  dir: .\n",
	})
	e.start(e.config(""), e.co)
	id := e.request("p1", "main")
	e.waitStatus(id, runs.StatusDeploying)
	log := e.logOf(id)
	if !strings.Contains(log, "iface:lo") || strings.Count(log, "iface:") != 1 {
		t.Errorf("an offline build sees interfaces other than lo:\n%s", log)
	}
}

// A .fabu.yml stage with image: runs in that image through the builder's container CLI
// and leaves its output in the checkout for the next stage and the artifact.
func TestImageStage(t *testing.T) {
	containertest.Require(t)
	dir := t.TempDir()
	bb, err := os.ReadFile(containertest.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	containertest.WriteContext(t, dir, map[string]string{"busybox": string(bb),
		"Dockerfile": "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nLABEL fabu.test=image-stage\n"})
	const image = "localhost/fabu-builder-stage-test:1"
	containertest.Podman(t, dir, "build", "-q", "-t", image, ".")

	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", ".", "s1", nil)
	e.repo.commit("main", map[string]string{
		"gen.sh": "mkdir -p out && echo \"built in $(uname -n)\" > out/index.html && ls /bin/busybox\n",
		".fabu.yml": "stages:\n  - name: gen\n    image: " + image + "\n    run: [sh, gen.sh]\n" +
			"  - {name: check, run: [cat, out/index.html]}\nartifact:\n  dir: out\n",
	})
	cfg := e.config("")
	cfg.ContainerCLI = "podman"
	e.start(cfg, e.co)
	id := e.request("p1", "main")
	if r := e.waitStatus(id, runs.StatusDeploying); r.Status != runs.StatusDeploying {
		t.Fatalf("run %+v\n%s", r, e.logOf(id))
	}
	if log := e.logOf(id); !strings.Contains(log, "/bin/busybox") || !strings.Contains(log, "built in") {
		t.Errorf("the image stage's output is not in the log:\n%s", log)
	}
}
