package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"fabu.dev/libs/container/containertest"
	"fabu.dev/libs/sshx/sshtest"
)

// A docker project end to end through `fabu up --container-cli podman`: the API accepts it
// with its registry password, a run builds the repository's Dockerfile with podman, pushes
// to a registry behind that password, and the deployer runs the image over a real sshd on
// this machine's podman, health-checked over HTTP. A second commit replaces the container;
// a run of the first commit reuses its image and brings it back, and a one-click rollback to
// the second run starts that run's image again by digest.
func TestDockerProjectEndToEnd(t *testing.T) {
	containertest.Require(t)
	reg := containertest.StartRegistry(t, "fabu-e2e", "e2e-registry-pass")
	addr := freeAddr(t)
	p := startFabu(t, "fabu up", addr, []string{"FABU_ADMIN_PASSWORD=" + adminPassword},
		"up", "--addr", addr, "--data-dir", t.TempDir(), "--lock-ttl", "6s", "--container-cli", "podman")
	a := login(t, p.url, adminPassword)
	sshd := sshtest.Start(t)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	waitFor(t, defaultWait, "the deployer's public key", func() (bool, error) {
		status, b := a.do("GET", "/api/v1/ssh/public-key", nil)
		if status != http.StatusOK {
			return false, nil
		}
		return true, json.Unmarshal(b, &key)
	})
	sshd.Authorize(t, key.PublicKey)
	var srv struct{ ID string }
	a.must(http.StatusCreated, "POST", "/api/v1/servers", map[string]any{"name": "docker-1", "host": "127.0.0.1",
		"port": sshd.Port, "user": "root", "host_key": sshd.HostKeyLine}, &srv)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := newRepo(t)
	first := r.commit(containertest.BusyboxContext(t, "release one", 8080))
	repo := reg.Addr + "/e2e/web"
	var proj struct {
		ID                string `json:"id"`
		HasDockerPassword bool   `json:"has_docker_password"`
	}
	a.must(http.StatusCreated, "POST", "/api/v1/projects", map[string]any{
		"name": "dockweb", "git_url": r.bare, "type": "docker", "branch": "main", "deploy_path": "/srv/dockweb",
		"server_ids": []string{srv.ID}, "build_image": repo, "docker_password": reg.Pass,
		"docker": map[string]any{"cli": "podman", "insecure": true, "username": reg.User,
			"ports": []string{fmt.Sprintf("127.0.0.1:%d:8080", port)}, "restart": "no", "env": map[string]string{"MODE": "e2e"},
			"health_port": port, "health_path": "/index.html", "health_timeout": 20, "stop_timeout": 1},
	}, &proj)
	if !proj.HasDockerPassword {
		t.Fatal("the project has no registry password")
	}
	t.Cleanup(func() {
		out, _ := exec.Command("podman", "ps", "-a", "--filter", "label=fabu.project="+proj.ID, "--format", "{{.Names}}").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("podman", "rm", "-f", "-t", "0", n).Run()
		}
		out, _ = exec.Command("podman", "images", "--format", "{{.ID}}", repo).Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command("podman", "rmi", "-f", id).Run()
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	deploy := func(ref string) runView {
		t.Helper()
		var run runView
		a.must(http.StatusCreated, "POST", "/api/v1/projects/"+proj.ID+"/runs", map[string]any{"ref": ref}, &run)
		got := a.awaitRun(run.ID, defaultWait)
		if got.Status != "succeeded" {
			t.Fatalf("run of %s = %+v\nlog:\n%s", ref, got, a.logText(run.ID))
		}
		return got
	}
	serves := func() string {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	one := deploy("main")
	if got := serves(); got != "release one" {
		t.Fatalf("after the first run %s serves %q", url, got)
	}
	log := a.logText(one.ID)
	for _, want := range []string{"stage build", "pushed " + repo + "@sha256:", "pulled " + repo, "answered", "run succeeded"} {
		if !strings.Contains(log, want) {
			t.Errorf("first run's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, reg.Pass) {
		t.Error("the registry password is in the run log")
	}
	r.commit(map[string]string{"www/index.html": "release two"})
	two := deploy("main")
	if got := serves(); got != "release two" {
		t.Fatalf("after the second run serves %q", got)
	}
	back := deploy(first)
	if got := serves(); got != "release one" {
		t.Errorf("after the rollback run serves %q, want release one", got)
	}
	if log := a.logText(back.ID); !strings.Contains(log, "reusing the image built for "+first) {
		t.Errorf("the rollback run built again instead of reusing the image:\n%s", log)
	}
	// One-click rollback to the second run: its image comes back by digest, nothing is built.
	var rb runView
	a.must(http.StatusCreated, "POST", "/api/v1/runs/"+two.ID+"/rollback", nil, &rb)
	if got := a.awaitRun(rb.ID, defaultWait); got.Status != "succeeded" || got.Commit != two.Commit {
		t.Fatalf("rollback run = %+v, want succeeded at %s\nlog:\n%s", got, two.Commit, a.logText(rb.ID))
	}
	if got := serves(); got != "release two" {
		t.Errorf("after the rollback to the second run serves %q, want release two", got)
	}
	if log := a.logText(rb.ID); !strings.Contains(log, "nothing to build") || strings.Contains(log, "stage build") {
		t.Errorf("the rollback run built something:\n%s", log)
	}
	out, err := exec.Command("podman", "ps", "--filter", "label=fabu.project="+proj.ID, "--format", "{{.Names}}").Output()
	if err != nil || len(strings.Fields(string(out))) != 1 {
		t.Errorf("running containers of the project: %q, %v; want exactly one", out, err)
	}
}
