package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/store"
)

// TestSaveTimeChecks: what a build or a deploy would refuse (or should never be asked
// to do) is refused when the project is saved, through the API and through apply, with a
// 400 naming the field: shell syntax in pipeline commands, command substitution in docker
// env values, build variables fabu sets or that change how programs load, deploy paths
// in system directories, and local repositories outside the directories an admin allows.
func TestSaveTimeChecks(t *testing.T) {
	allowed := t.TempDir()
	e := newEnvWith(t, store.SQLite, func(c *Config) { c.AllowedLocalRepos = []string{allowed} })
	base := func(over map[string]any) map[string]any {
		p := map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git", "type": "static",
			"branch": "main", "deploy_path": "/srv/shop"}
		for k, v := range over {
			p[k] = v
		}
		return p
	}
	stage := func(run any) map[string]any {
		return base(map[string]any{"pipeline": map[string]any{"stages": []any{map[string]any{"name": "build", "run": run}}}})
	}
	docker := func(env map[string]string) map[string]any {
		return base(map[string]any{"type": "docker", "build_image": "registry.example.com/web/shop", "docker": map[string]any{"env": env}})
	}
	tests := []struct {
		name string
		body map[string]any
		want string // "" for accepted, else a part of the 400's message
	}{
		{"pipe in a run string", stage("make | tee log"), "pipe"},
		{"and-list in a run string", stage("npm ci && npm run build"), "give each command its own stage"},
		{"substitution in a run string", stage("echo $(cat /etc/shadow)"), "substitution"},
		{"redirection in a run string", stage("make > /etc/passwd"), "redirection"},
		{"two lines in a run string", stage("make\nmake install"), "one line"},
		{"sh -c as a list", stage([]string{"sh", "-c", "id"}), "sh -c is not allowed"},
		{"bash -c as a string", stage("bash -c 'id'"), "bash -c is not allowed"},
		{"empty run string", stage(""), "empty command"},
		{"empty run list", stage([]string{}), "empty command"},
		{"plain run string", stage("mvn -B -q package"), ""},
		{"quoted metacharacters", stage(`echo "a|b" 'c;d'`), ""},
		{"script through sh", stage([]string{"sh", "build.sh"}), ""},
		{"docker env $(…)", docker(map[string]string{"A": "$(id)"}), "command substitution"},
		{"docker env backticks", docker(map[string]string{"A": "`id`"}), "docker env"},
		{"docker env plain", docker(map[string]string{"A": "$5 a=b"}), ""},
		{"build_env PATH", base(map[string]any{"build_env": map[string]string{"PATH": "/tmp/evil"}}), "PATH is set by fabu"},
		{"build_env LD_PRELOAD", base(map[string]any{"build_env": map[string]string{"LD_PRELOAD": "/tmp/x.so"}}), "LD_PRELOAD changes how every program is loaded"},
		{"build_env LD_LIBRARY_PATH", base(map[string]any{"build_env": map[string]string{"LD_LIBRARY_PATH": "/tmp"}}), "LD_LIBRARY_PATH"},
		{"pipeline env PATH", base(map[string]any{"pipeline": map[string]any{"env": map[string]string{"PATH": "/x"}}}), "PATH"},
		{"stage env LD_AUDIT", base(map[string]any{"pipeline": map[string]any{"stages": []any{map[string]any{"name": "b", "run": "make",
			"env": map[string]string{"LD_AUDIT": "/x.so"}}}}}), "LD_AUDIT"},
		{"build_env ordinary", base(map[string]any{"build_env": map[string]string{"NODE_ENV": "production", "PATHS": "a"}}), ""},
		{"deploy to /etc", base(map[string]any{"deploy_path": "/etc/nginx/html"}), "deploy_path"},
		{"deploy to /etc itself", base(map[string]any{"deploy_path": "/etc"}), "deploy_path"},
		{"deploy to /proc", base(map[string]any{"deploy_path": "/proc/1"}), "deploy_path"},
		{"deploy to /sys", base(map[string]any{"deploy_path": "/sys/kernel"}), "deploy_path"},
		{"deploy to /dev", base(map[string]any{"deploy_path": "/dev/shm/site"}), "deploy_path"},
		{"deploy to /boot", base(map[string]any{"deploy_path": "/boot/site"}), "deploy_path"},
		{"deploy to /root", base(map[string]any{"deploy_path": "/root/site"}), "deploy_path"},
		{"deploy to a name that only starts like one", base(map[string]any{"deploy_path": "/etcetera/site"}), ""},
		{"deploy to /srv", base(map[string]any{"deploy_path": "/srv/site"}), ""},
		{"local path not allowed", base(map[string]any{"git_url": "/srv/git/shop.git"}), "git_url"},
		{"file URL not allowed", base(map[string]any{"git_url": "file:///srv/git/shop.git"}), "git_url"},
		{"local path beside the allowed dir", base(map[string]any{"git_url": allowed + "x/shop.git"}), "git_url"},
		{"local path climbing out", base(map[string]any{"git_url": allowed + "/../shop.git"}), "git_url"},
		{"file URL with a host", base(map[string]any{"git_url": "file://evil.example.com" + allowed + "/shop.git"}), "git_url"},
		{"local path allowed", base(map[string]any{"git_url": allowed + "/shop.git"}), ""},
		{"file URL allowed", base(map[string]any{"git_url": "file://" + allowed + "/shop.git"}), ""},
		{"allowed dir itself", base(map[string]any{"git_url": allowed}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, via := range []string{"create", "apply"} {
				var st int
				var text string
				if via == "create" {
					st, text = e.rawJSON("POST", "/api/v1/projects", tt.body)
				} else {
					st, text = e.rawJSON("POST", "/api/v1/apply", map[string]any{"servers": []any{}, "projects": []any{tt.body}})
				}
				switch {
				case tt.want == "" && st >= 300:
					t.Errorf("%s: %d %s, want it accepted", via, st, text)
				case tt.want != "" && (st != http.StatusBadRequest || !strings.Contains(text, tt.want)):
					t.Errorf("%s: %d %s, want 400 naming %q", via, st, text, tt.want)
				}
				e.exec(`DELETE FROM projects`)
			}
		})
	}
}

// TestLocalReposRefusedByDefault: without --allowed-local-repos no local repository is
// accepted, however it is written.
func TestLocalReposRefusedByDefault(t *testing.T) {
	e := newEnv(t, store.SQLite)
	for _, u := range []string{"/srv/git/shop.git", "file:///srv/git/shop.git", "FILE:///srv/git/shop.git", "/tmp/x.git"} {
		st, text := e.rawJSON("POST", "/api/v1/projects", map[string]any{"name": "shop", "git_url": u, "branch": "main", "deploy_path": "/srv/shop"})
		if st != http.StatusBadRequest || !strings.Contains(text, "allowed-local-repos") {
			t.Errorf("git_url %s: %d %s, want 400 saying how to allow local repositories", u, st, text)
		}
	}
}

// rawJSON calls path as alice with body as JSON and returns the status and the whole body.
func (e *env) rawJSON(method, path string, body any) (int, string) {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.rawBody(method, path, string(b))
}
