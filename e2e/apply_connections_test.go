package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyDeclaresConnectionsAndTriggers: `fabu apply` declares a platform connection
// (token write-only), a project linked to a repository on it and the project's trigger
// rules; applying the same file again changes nothing.
func TestApplyDeclaresConnectionsAndTriggers(t *testing.T) {
	p, a := up(t)
	c := newCLI(t)
	c.mustRun(adminPassword+"\n", "login", "--server", p.url, "--user", "admin", "--password-stdin")
	file := filepath.Join(t.TempDir(), "fabu.yaml")
	doc := `connections:
  - name: gh
    platform: github
    token: ghp_e2e-token-value
servers:
  - name: web-1
    host: 127.0.0.1
    user: deploy
    host_key: "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
projects:
  - name: shop
    git_url: https://github.com/acme/shop.git
    source_dir: dist
    branch: main
    deploy_path: /srv/shop
    servers: [web-1]
    connection: gh
    repo_path: acme/shop
    webhook_secret: e2e-webhook-secret-0123456789
    trigger_branches: [main, "release/*"]
    trigger_tags: ["v*"]
    trigger_keyword: ""
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	got := applied(t, c.mustRun("", "apply", "-f", file))
	if got["connection gh"] != "created" || got["project shop"] != "created" || got["server web-1"] != "created" {
		t.Errorf("first apply = %v", got)
	}
	res := c.mustRun("", "apply", "-f", file)
	if got := applied(t, res); got["connection gh"] != "unchanged" || got["project shop"] != "unchanged" {
		t.Errorf("second apply = %v", got)
	}
	if strings.Contains(res.output(), "ghp_e2e-token-value") {
		t.Error("apply printed the token")
	}
	var projects []struct {
		Platform        string   `json:"platform"`
		RepoPath        string   `json:"repo_path"`
		ConnectionID    string   `json:"connection_id"`
		TriggerBranches []string `json:"trigger_branches"`
		TriggerTags     []string `json:"trigger_tags"`
		TriggerKeyword  *string  `json:"trigger_keyword"`
	}
	a.must(http.StatusOK, "GET", "/api/v1/projects", nil, &projects)
	pr := projects[0]
	if pr.Platform != "github" || pr.RepoPath != "acme/shop" || pr.ConnectionID == "" ||
		strings.Join(pr.TriggerBranches, ",") != "main,release/*" || strings.Join(pr.TriggerTags, ",") != "v*" ||
		pr.TriggerKeyword == nil || *pr.TriggerKeyword != "" {
		t.Errorf("project after apply = %+v", pr)
	}
	status, body := a.do("GET", "/api/v1/connections", nil)
	if status != http.StatusOK || strings.Contains(string(body), "ghp_e2e-token-value") || !strings.Contains(string(body), `"has_token":true`) {
		t.Errorf("GET /connections = %d %s, want the token set but never shown", status, body)
	}
}
