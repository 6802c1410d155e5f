package builder

import (
	"os/exec"
	"strings"
	"testing"

	"fabu.dev/libs/container"
	"fabu.dev/libs/container/containertest"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/secret"
)

// A docker project builds with podman from the repository's Dockerfile, pushes to a real
// registry behind a password (opened from its sealed form, never logged), tags the ref
// too, and hands the deployer the image pinned by the digest the registry stored. A second
// run of the same commit reuses the pushed image without building.
func TestDockerBuildPushesAndReuses(t *testing.T) {
	containertest.Require(t)
	e := newEnv(t, backends[0])
	reg := containertest.StartRegistry(t, "builder-ci", "push-pass-42")
	keys, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal([]byte(reg.Pass), container.PasswordPlace("p1"))
	if err != nil {
		t.Fatal(err)
	}
	repo := reg.Addr + "/team/app"
	st, err := container.Settings{CLI: "podman", Insecure: true, Username: reg.User, TagRef: true}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e.buildProject("p1", "docker", ".", "s1", map[string]any{"build_image": repo, "docker_settings": st, "docker_password_sealed": sealed})
	files := containertest.BusyboxContext(t, "hello from the image", 8080)
	// podman echoes every instruction into the build stage's output: the password must be
	// masked there, though fabu itself never prints it.
	files["Dockerfile"] += "LABEL fabu.test.note=\"" + reg.Pass + "\"\n"
	commit := e.repo.commit("main", files)
	tag := commit[:12]
	cfg := e.config("")
	cfg.ContainerCLI, cfg.Secrets = "podman", keys
	e.start(cfg, e.co)
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", repo+":"+tag, repo+":main").Run() })

	id := e.request("p1", "main")
	r := e.waitStatus(id, runs.StatusDeploying)
	ev := e.builtEvent(id)
	ref, err := container.ParseRef(ev.ArtifactPath)
	if err != nil || ev.ArtifactKind != events.ArtifactImage || ref.Repository != repo || ev.ArtifactURL != "" {
		t.Fatalf("RunBuilt = %+v (%v), want an image of %s pinned by digest", ev, err, repo)
	}
	if ev.ArtifactSHA256 != strings.TrimPrefix(ref.Digest, "sha256:") || r.ArtifactPath != ev.ArtifactPath || r.ArtifactSHA256 != ev.ArtifactSHA256 {
		t.Errorf("digest: event %s %s, row %s %s", ev.ArtifactPath, ev.ArtifactSHA256, r.ArtifactPath, r.ArtifactSHA256)
	}
	const manifest = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
	if status, body := reg.Get(t, "/v2/team/app/manifests/"+ref.Digest, manifest); status != 200 {
		t.Errorf("registry has no manifest %s: %d %s", ref.Digest, status, body)
	}
	_, tags := reg.Get(t, "/v2/team/app/tags/list", "")
	for _, want := range []string{`"` + tag + `"`, `"main"`} {
		if !strings.Contains(tags, want) {
			t.Errorf("registry tags %s lack %s", tags, want)
		}
	}
	var names []string
	for _, row := range e.stagesOf(id) {
		if row.Status != stageSucceeded {
			t.Errorf("stage %s %s", row.Name, row.Status)
		}
		names = append(names, row.Name)
	}
	if got := strings.Join(names, ","); got != "build,push,tag-ref,push-ref" {
		t.Errorf("stages %s, want build,push,tag-ref,push-ref", got)
	}
	log := e.logOf(id)
	if strings.Contains(log, reg.Pass) {
		t.Errorf("the registry password is in the log:\n%s", log)
	}
	if !strings.Contains(log, `fabu.test.note="****"`) {
		t.Errorf("the build stage's echo of the Dockerfile's LABEL is not in the log, masked:\n%s", log)
	}
	if !strings.Contains(log, "pushed "+ref.String()) {
		t.Errorf("log does not name the pushed image:\n%s", log)
	}
	if err := exec.Command("podman", "image", "exists", repo+":"+tag).Run(); err == nil {
		t.Error("the pushed image is still tagged on the builder")
	}
	e.deployed(ev)
	e.waitStatus(id, runs.StatusSucceeded)

	again := e.request("p1", commit)
	e.waitStatus(again, runs.StatusDeploying)
	ev2 := e.builtEvent(again)
	if ev2.ArtifactPath != ev.ArtifactPath || ev2.ArtifactKind != events.ArtifactImage {
		t.Errorf("second run's image %s, want the reused %s", ev2.ArtifactPath, ev.ArtifactPath)
	}
	if rows := e.stagesOf(again); len(rows) != 0 {
		t.Errorf("second run ran stages %+v, want none (reused)", rows)
	}
	if log := e.logOf(again); !strings.Contains(log, "reusing the image built for "+commit) {
		t.Errorf("second run's log does not say it reused the image:\n%s", log)
	}
}

// A wrong registry password fails the push, and the run says so.
func TestDockerPushWithWrongPasswordFails(t *testing.T) {
	containertest.Require(t)
	e := newEnv(t, backends[0])
	reg := containertest.StartRegistry(t, "builder-ci", "right-pass")
	keys, err := secret.NewKeyring(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal([]byte("wrong-pass"), container.PasswordPlace("p1"))
	if err != nil {
		t.Fatal(err)
	}
	repo := reg.Addr + "/team/denied"
	st, err := container.Settings{CLI: "podman", Insecure: true, Username: reg.User}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e.buildProject("p1", "docker", ".", "s1", map[string]any{"build_image": repo, "docker_settings": st, "docker_password_sealed": sealed})
	commit := e.repo.commit("main", containertest.BusyboxContext(t, "x", 8080))
	cfg := e.config("")
	cfg.ContainerCLI, cfg.Secrets = "podman", keys
	e.start(cfg, e.co)
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", repo+":"+commit[:12]).Run() })

	id := e.request("p1", "main")
	r := e.waitStatus(id, runs.StatusFailed)
	if !strings.Contains(r.Error, "stage push") || !strings.Contains(strings.ToLower(r.Error), "unauthorized") {
		t.Errorf("run error = %q, want the push refused as unauthorized", r.Error)
	}
	if strings.Contains(e.logOf(id), "wrong-pass") {
		t.Error("the password is in the log")
	}
}
