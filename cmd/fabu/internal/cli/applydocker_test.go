package cli

import (
	"reflect"
	"strings"
	"testing"

	"fabu.dev/cmd/fabu/internal/client"
)

// A docker project's settings in fabu.yaml reach the API body field for field; a misspelt
// setting is an error naming it.
func TestApplyFileDockerProject(t *testing.T) {
	const file = `projects:
  - name: web
    git_url: https://git.example.com/web.git
    type: docker
    deploy_path: /srv/web
    servers: [web1]
    build_image: registry.example.com/team/web
    docker_password: token-1
    docker:
      cli: podman
      username: ci
      insecure: true
      tag_ref: true
      ports: ["127.0.0.1:8080:80"]
      env: {MODE: production}
      volumes: ["/srv/web/data:/data"]
      restart: on-failure:3
      network: host
      health_port: 8080
      health_path: /healthz
      health_timeout: 30
      stop_timeout: 5
`
	doc, err := parseApplyFile(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := &client.DockerSpec{CLI: "podman", Username: "ci", Insecure: true, TagRef: true, Ports: []string{"127.0.0.1:8080:80"},
		Env: map[string]string{"MODE": "production"}, Volumes: []string{"/srv/web/data:/data"}, Restart: "on-failure:3",
		Network: "host", HealthPort: 8080, HealthPath: "/healthz", HealthTimeout: 30, StopTimeout: 5}
	p := doc.Projects[0]
	if !reflect.DeepEqual(p.Docker, want) || p.BuildImage != "registry.example.com/team/web" || p.DockerPassword != "token-1" {
		t.Errorf("project %+v docker %+v", p, p.Docker)
	}
	_, err = parseApplyFile(strings.NewReader(strings.Replace(file, "health_port:", "healthport:", 1)))
	if err == nil || !strings.Contains(err.Error(), "healthport") || !strings.Contains(err.Error(), "docker settings") {
		t.Errorf("misspelt setting: error = %v", err)
	}
}
