package deployer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/container"
	"fabu.dev/libs/container/containertest"
	"fabu.dev/libs/events"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/secret"
)

// Docker deploys against real things: images built with podman FROM scratch (a static
// busybox serving HTTP), pushed to Debian's docker-registry on a loopback port, deployed over
// a real sshd to this machine's podman. scripts/test-deps.sh installs them.

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pushImage builds an image that serves body over HTTP on listen (inside the container),
// pushes it to repo on reg and removes it locally, returning it pinned by digest.
func pushImage(t *testing.T, reg containertest.Registry, repo, tag, body string, listen int) container.Ref {
	t.Helper()
	dir := t.TempDir()
	containertest.WriteContext(t, dir, containertest.BusyboxContext(t, body, listen))
	ref := repo + ":" + tag
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	containertest.Podman(t, dir, "build", "-q", "-t", ref, ".")
	containertest.Podman(t, dir, "push", "-q", "--tls-verify=false", "--authfile", filepath.Join(dir, "auth.json"),
		"--creds", reg.User+":"+reg.Pass, "--digestfile", filepath.Join(dir, "digest"), ref)
	containertest.Podman(t, dir, "rmi", ref) // the deploy must pull it
	d, err := os.ReadFile(filepath.Join(dir, "digest"))
	if err != nil {
		t.Fatal(err)
	}
	return container.Ref{Repository: repo, Digest: strings.TrimSpace(string(d))}
}

// dockerProject makes project pd of type docker deploying to the test's sshd.
func (e *env) dockerProject(st container.Settings, keep int) {
	e.t.Helper()
	enc, err := st.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	e.exec(`INSERT INTO projects (id, name, git_url, type, source_dir, branch, deploy_path, keep_releases, docker_settings, created_at, updated_at)
		VALUES ('pd', ?, '/tmp/x.git', 'docker', '.', 'main', '/srv/app', ?, ?, ?, ?)`, "web"+strings.ToLower(ids.New()[20:]), keep, enc, now, now)
	e.exec(`INSERT INTO project_servers (project_id, server_id) VALUES ('pd', 's1')`)
	e.t.Cleanup(func() { // whatever the test left behind on this machine's podman
		out, _ := exec.Command("podman", "ps", "-a", "--filter", "label=fabu.project=pd", "--format", "{{.Names}}").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("podman", "rm", "-f", "-t", "0", n).Run()
		}
	})
}

// builtImage makes a deploying run of project pd whose artifact is ref.
func (e *env) builtImage(ref container.Ref) events.RunBuilt {
	e.t.Helper()
	id := ids.New()
	lease, err := e.co.Acquire(context.Background(), "deploy:"+id, id, 3*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now().UTC()
	e.exec(`INSERT INTO runs (id, project_id, ref, status, trigger, triggered_by, lock_token, heartbeat_at, artifact_path, artifact_sha256, created_at, updated_at)
		VALUES (?, 'pd', 'main', 'deploying', 'manual', 'alice', ?, ?, ?, ?, ?, ?)`, id, lease.Token, now, ref.String(), strings.TrimPrefix(ref.Digest, "sha256:"), now, now)
	return events.RunBuilt{RunID: id, ProjectID: "pd", Commit: strings.Repeat("b", 40), ArtifactPath: ref.String(),
		ArtifactSHA256: strings.TrimPrefix(ref.Digest, "sha256:"), ArtifactKind: events.ArtifactImage,
		LockKey: lease.Key, LockToken: lease.Token}
}

// containers maps the project's containers on this machine to whether they run.
func (e *env) containers() map[string]bool {
	e.t.Helper()
	m := map[string]bool{}
	for _, all := range []bool{true, false} {
		args := []string{"ps", "--filter", "label=fabu.project=pd", "--format", "{{.Names}}"}
		if all {
			args = append(args, "-a")
		}
		out, err := exec.Command("podman", args...).Output()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, n := range strings.Fields(string(out)) {
			m[n] = !all
		}
	}
	return m
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestDockerDeployHealthRollbackAndPrune(t *testing.T) {
	containertest.Require(t)
	e := newEnv(t)
	reg := containertest.StartRegistry(t, "deployer", "registry-pass-1")
	repo := reg.Addr + "/fabu-test/web"
	hostPort := freePort(t)
	keys := testKeys(t)
	e.s.cfg.Secrets = keys
	e.dockerProject(container.Settings{CLI: "podman", Insecure: true, Username: reg.User, Ports: []string{fmt.Sprintf("127.0.0.1:%d:8080", hostPort)},
		Env: map[string]string{"GREETING": "hello world"}, Restart: "no", HealthPort: hostPort, HealthPath: "/index.html", HealthTimeout: 5, StopTimeout: 1}, 2)
	sealed, err := keys.Seal([]byte(reg.Pass), container.PasswordPlace("pd"))
	if err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE projects SET docker_password_sealed = ? WHERE id = 'pd'`, sealed)
	v1 := pushImage(t, reg, repo, "v1", "v1", 8080)
	v2 := pushImage(t, reg, repo, "v2", "v2", 8080)
	broken := pushImage(t, reg, repo, "broken", "never served", 9999) // listens on the wrong port
	t.Cleanup(func() {
		for _, r := range []container.Ref{v1, v2, broken} {
			_ = exec.Command("podman", "rmi", "-f", r.String()).Run()
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)

	deploy := func(ref container.Ref) (events.RunBuilt, runs.Run) {
		ev := e.builtImage(ref)
		e.s.deploy(context.Background(), ev)
		return ev, e.run(ev.RunID)
	}
	nameOf := func(ev events.RunBuilt) string {
		var name string
		if err := e.db.Raw(`SELECT name FROM projects WHERE id = 'pd'`).Scan(&name).Error; err != nil {
			t.Fatal(err)
		}
		return "fabu-" + name + "-" + strings.ToLower(ev.RunID)
	}

	ev1, r1 := deploy(v1)
	if r1.Status != runs.StatusSucceeded || r1.ReleaseID != ev1.RunID {
		t.Fatalf("first deploy: %s %q\n%s", r1.Status, r1.Error, e.logOf(ev1.RunID))
	}
	if got := get(t, url); got != "v1" {
		t.Fatalf("after v1: %s serves %q", url, got)
	}
	if !e.lockFree(ev1) {
		t.Error("lock held after the first deploy")
	}
	env, err := exec.Command("podman", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", nameOf(ev1)).Output()
	if err != nil || !strings.Contains(string(env), "GREETING=hello world") {
		t.Errorf("container env = %q, %v; want GREETING=hello world", env, err)
	}

	ev2, r2 := deploy(v2)
	if r2.Status != runs.StatusSucceeded {
		t.Fatalf("second deploy: %s %q\n%s", r2.Status, r2.Error, e.logOf(ev2.RunID))
	}
	if got := get(t, url); got != "v2" {
		t.Fatalf("after v2: serves %q", got)
	}
	if cs := e.containers(); len(cs) != 1 || !cs[nameOf(ev2)] {
		t.Errorf("containers after v2 = %v, want only %s running (the previous one removed)", cs, nameOf(ev2))
	}

	ev3, r3 := deploy(broken)
	if r3.Status != runs.StatusFailed || !strings.Contains(r3.Error, "health check") || !strings.Contains(r3.Error, "previous release keeps running") {
		t.Fatalf("broken deploy: %s %q, want failed on the health check\n%s", r3.Status, r3.Error, e.logOf(ev3.RunID))
	}
	if got := get(t, url); got != "v2" {
		t.Errorf("after the failed deploy: serves %q, want v2 still", got)
	}
	if cs := e.containers(); len(cs) != 1 || !cs[nameOf(ev2)] {
		t.Errorf("containers after the failed deploy = %v, want only %s running", cs, nameOf(ev2))
	}
	if !e.lockFree(ev3) {
		t.Error("lock held after the failed deploy")
	}

	// Rolling back is a run that deploys the earlier release's image again.
	ev4, r4 := deploy(v1)
	if r4.Status != runs.StatusSucceeded {
		t.Fatalf("rollback to v1: %s %q\n%s", r4.Status, r4.Error, e.logOf(ev4.RunID))
	}
	if got := get(t, url); got != "v1" {
		t.Errorf("after rollback: serves %q, want v1", got)
	}
	// keep_releases 2: the images of v1 (current) and v2 stay, the broken one goes.
	out := containertest.Podman(t, "", "images", "--digests", "--format", "{{.Digest}}", repo)
	for _, want := range []container.Ref{v1, v2} {
		if !strings.Contains(out, want.Digest) {
			t.Errorf("image %s was pruned; images:\n%s", want, out)
		}
	}
	if strings.Contains(out, broken.Digest) {
		t.Errorf("image %s of the failed release was kept; images:\n%s", broken, out)
	}
	log := e.logOf(ev4.RunID)
	if strings.Contains(log, reg.Pass) || strings.Contains(e.sshd.Log(), reg.Pass) {
		t.Error("the registry password reached a log")
	}
	for _, want := range []string{"pulled " + v1.String(), "stopped the previous container " + nameOf(ev2), "answered", "removed the previous container"} {
		if !strings.Contains(log, want) {
			t.Errorf("rollback log lacks %q:\n%s", want, log)
		}
	}
}

// A deploy whose CLI is missing on the target fails with the shell's reason, before any
// container changes.
func TestDockerDeployWithoutCLI(t *testing.T) {
	e := newEnv(t)
	e.dockerProject(container.Settings{CLI: "/nonexistent/bin/docker"}, 2)
	ref := container.Ref{Repository: "127.0.0.1:5999/team/app", Digest: "sha256:" + strings.Repeat("a", 64)}
	ev := e.builtImage(ref)
	e.s.deploy(context.Background(), ev)
	r := e.run(ev.RunID)
	if r.Status != runs.StatusFailed || !strings.Contains(r.Error, "pull "+ref.String()) || !strings.Contains(r.Error, "127") {
		t.Errorf("run = %s %q, want failed pulling with exit status 127 (command not found)", r.Status, r.Error)
	}
	if log := e.logOf(ev.RunID); !strings.Contains(log, "/nonexistent/bin/docker") || !strings.Contains(log, "not found") {
		t.Errorf("log should say the CLI was not found:\n%s", log)
	}
}

// Hostile settings stored in the database (written around the gateway) are refused before
// any SSH session.
func TestDockerDeployRefusesHostileSettings(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	e.exec(`INSERT INTO projects (id, name, git_url, type, source_dir, branch, deploy_path, keep_releases, docker_settings, created_at, updated_at)
		VALUES ('pd', 'webx', '/tmp/x.git', 'docker', '.', 'main', '/srv/app', 2, ?, ?, ?)`, `{"ports":["8080:80; rm -rf /"]}`, now, now)
	e.exec(`INSERT INTO project_servers (project_id, server_id) VALUES ('pd', 's1')`)
	ev := e.builtImage(container.Ref{Repository: "127.0.0.1:5999/team/app", Digest: "sha256:" + strings.Repeat("a", 64)})
	e.s.deploy(context.Background(), ev)
	r := e.run(ev.RunID)
	if r.Status != runs.StatusFailed || !strings.Contains(r.Error, "docker port") {
		t.Errorf("run = %s %q, want failed on the port", r.Status, r.Error)
	}
	if strings.Contains(e.sshd.Log(), "Accepted publickey") {
		t.Error("an SSH session was opened for hostile settings")
	}
}

// logOf returns run id's log text.
func (e *env) logOf(id string) string {
	e.t.Helper()
	var lines []string
	if err := e.db.Raw(`SELECT text FROM run_logs WHERE run_id = ? ORDER BY line`, id).Scan(&lines).Error; err != nil {
		e.t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func testKeys(t *testing.T) *secret.Keyring {
	t.Helper()
	k, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
