package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"fabu.dev/libs/container"
	"fabu.dev/libs/store"
)

func dockerProject(name string, docker map[string]any) map[string]any {
	return map[string]any{"name": name, "git_url": "https://gitlab.example.com/web/shop.git", "type": "docker",
		"branch": "main", "deploy_path": "/srv/" + name, "build_image": "registry.example.com:5000/web/" + name, "docker": docker}
}

// A docker project is accepted with its settings; the registry password is sealed, never
// shown, kept when omitted and dropped with the user name.
func TestDockerProjectSettings(t *testing.T) {
	e := newEnv(t, store.SQLite)
	body := dockerProject("shop", map[string]any{"cli": "podman", "insecure": true, "username": "robot$ci",
		"ports": []string{"127.0.0.1:8080:80", "9090:90/udp"}, "env": map[string]string{"MODE": "prod"},
		"volumes": []string{"/srv/data:/data:ro", "cache:/cache"}, "restart": "on-failure:3",
		"health_port": 8080, "health_path": "/healthz?full=1", "health_timeout": 30})
	body["docker_password"] = "s3cret-registry-token"
	var got map[string]any
	if s := e.call("POST", "/api/v1/projects", body, &got); s != 201 {
		t.Fatalf("create docker project = %d %v", s, got)
	}
	id, _ := got["id"].(string)
	if got["has_docker_password"] != true || strings.Contains(toJSON(got), "s3cret") {
		t.Errorf("created body %v: password must be write-only and set", got)
	}
	var stored Project
	if err := e.db.Where("id = ?", id).Take(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if stored.DockerPasswordSealed == "" || strings.Contains(stored.DockerPasswordSealed, "s3cret") {
		t.Errorf("registry password stored as %q, want sealed", stored.DockerPasswordSealed)
	}
	st, err := container.Parse(stored.DockerSettings)
	if err != nil || st.CLI != "podman" || st.HealthPort != 8080 || st.Env["MODE"] != "prod" || len(st.Volumes) != 2 {
		t.Errorf("stored settings %+v, %v", st, err)
	}
	delete(body, "docker_password") // an update without the password keeps it
	if s := e.call("PUT", "/api/v1/projects/"+id, body, &got); s != 200 || got["has_docker_password"] != true {
		t.Errorf("update without password = %d, has_docker_password %v", s, got["has_docker_password"])
	}
	body["docker"] = map[string]any{"cli": "podman"}
	if s := e.call("PUT", "/api/v1/projects/"+id, body, &got); s != 200 || got["has_docker_password"] != false {
		t.Errorf("update without user = %d, has_docker_password %v; want the password dropped", s, got["has_docker_password"])
	}
}

// Hostile docker settings are refused with 400 before anything is stored.
func TestDockerProjectRefusesHostileSettings(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for name, change := range map[string]func(b map[string]any){
		"image without registry": func(b map[string]any) { b["build_image"] = "web/shop" },
		"image with tag":         func(b map[string]any) { b["build_image"] = "registry.example.com/web/shop:latest" },
		"image with shell":       func(b map[string]any) { b["build_image"] = "registry.example.com/web/$(id)" },
		"no image":               func(b map[string]any) { delete(b, "build_image") },
		"cli not docker":         func(b map[string]any) { b["docker"] = map[string]any{"cli": "sh"} },
		"cli relative path":      func(b map[string]any) { b["docker"] = map[string]any{"cli": "../bin/docker"} },
		"port with shell":        func(b map[string]any) { b["docker"] = map[string]any{"ports": []string{"8080:80;reboot"}} },
		"port out of range":      func(b map[string]any) { b["docker"] = map[string]any{"ports": []string{"70000:80"}} },
		"port published twice":   func(b map[string]any) { b["docker"] = map[string]any{"ports": []string{"8080:80", "8080:81"}} },
		"env key with space":     func(b map[string]any) { b["docker"] = map[string]any{"env": map[string]string{"A B": "x"}} },
		"env key with equals":    func(b map[string]any) { b["docker"] = map[string]any{"env": map[string]string{"A=B": "x"}} },
		"env value with newline": func(b map[string]any) { b["docker"] = map[string]any{"env": map[string]string{"A": "x\ny"}} },
		"docker socket volume":   func(b map[string]any) { b["docker"] = map[string]any{"volumes": []string{"/var/run/docker.sock:/s"}} },
		"root volume":            func(b map[string]any) { b["docker"] = map[string]any{"volumes": []string{"/:/host"}} },
		"volume with dotdot":     func(b map[string]any) { b["docker"] = map[string]any{"volumes": []string{"/srv/../etc:/x"}} },
		"restart policy":         func(b map[string]any) { b["docker"] = map[string]any{"restart": "always;id"} },
		"network container:":     func(b map[string]any) { b["docker"] = map[string]any{"network": "container:db"} },
		"health path":            func(b map[string]any) { b["docker"] = map[string]any{"health_path": "healthz"} },
		"unknown setting":        func(b map[string]any) { b["docker"] = map[string]any{"privileged": true} },
		"password without user":  func(b map[string]any) { b["docker_password"] = "x" },
		"settings on static":     func(b map[string]any) { b["type"] = "static" },
	} {
		b := dockerProject("bad", map[string]any{"cli": "docker"})
		change(b)
		var got map[string]any
		if s := e.call("POST", "/api/v1/projects", b, &got); s != 400 {
			t.Errorf("%s: create = %d %v, want 400", name, s, got)
		}
	}
	var n int64
	e.db.Model(&Project{}).Count(&n)
	if n != 0 {
		t.Errorf("%d projects stored from refused bodies", n)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// /apply seals a docker project's registry password once: the same document again leaves
// the project unchanged, a new password is sealed anew.
func TestApplyDockerProject(t *testing.T) {
	e := newEnv(t, store.SQLite)
	p := dockerProject("shop", map[string]any{"cli": "podman", "username": "ci", "ports": []string{"8080:80"}})
	p["docker_password"] = "first-pass"
	p["servers"] = []string{"web-1"}
	doc := map[string]any{"servers": []any{server("web-1")}, "projects": []any{p}}
	var got struct{ Projects []Applied }
	if s := e.call("POST", "/api/v1/apply", doc, &got); s != 200 || got.Projects[0].Action != "created" {
		t.Fatalf("apply = %d %+v", s, got)
	}
	var first Project
	if err := e.db.Where("name = ?", "shop").Take(&first).Error; err != nil {
		t.Fatal(err)
	}
	if first.DockerPasswordSealed == "" || first.DockerSettings == "" {
		t.Fatalf("stored %+v: want settings and a sealed password", first)
	}
	if e.call("POST", "/api/v1/apply", doc, &got); got.Projects[0].Action != "unchanged" {
		t.Errorf("re-apply = %s, want unchanged", got.Projects[0].Action)
	}
	p["docker_password"] = "second-pass"
	if e.call("POST", "/api/v1/apply", doc, &got); got.Projects[0].Action != "updated" {
		t.Errorf("apply with a new password = %s, want updated", got.Projects[0].Action)
	}
	p["docker"] = map[string]any{"ports": []string{"8080:80 --privileged"}}
	if s := e.call("POST", "/api/v1/apply", doc, nil); s != 400 {
		t.Errorf("apply with a hostile port = %d, want 400", s)
	}
}
