package gateway

import (
	"net/http"
	"testing"

	"fabu.dev/libs/store"
)

// TestServerRulesGuardEveryPathToADeploy: a project owner without may_deploy on a server
// of a server group cannot deploy there with the button, and so cannot get there another
// way: by adding the server to the project's targets, by creating a trigger URL or by
// setting a webhook secret (or installing a hook) on a project that deploys there. With a
// rule allowing them, they can.
func TestServerRulesGuardEveryPathToADeploy(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			f := e.seed() // project f["project"] in the default group, deploying to the open server f["server"]
			e.exec(`INSERT INTO servers (id, name, host, port, ssh_user, host_key) VALUES ('s-prod', 'prod-1', '127.0.0.2', 22, 'deploy', ?)`, hostKey)
			e.exec(`INSERT INTO server_groups (id, name) VALUES ('sg-prod', 'production')`)
			e.exec(`UPDATE servers SET server_group_id = 'sg-prod' WHERE id = 's-prod'`)
			pid := f["project"]

			var body ProjectBody
			if got := e.as("owner", "GET", "/api/v1/projects/"+pid, nil, &body); got != http.StatusOK {
				t.Fatalf("GET project: %d", got)
			}
			withServers := func(secret string, servers ...string) ProjectBody {
				b := body
				b.ServerIDs, b.WebhookSecret = servers, secret
				return b
			}
			fresh := withServers("", "s-prod")
			fresh.ID, fresh.Name, fresh.DeployPath = "", "fresh", "/srv/fresh"
			refused := []struct {
				name, method, path string
				body               any
			}{
				{"add the restricted server", "PUT", "/api/v1/projects/" + pid, withServers("", f["server"], "s-prod")},
				{"create a project on it", "POST", "/api/v1/projects", fresh},
			}
			for _, r := range refused {
				if got := e.as("owner", r.method, r.path, r.body, nil); got != http.StatusForbidden {
					t.Errorf("%s: %d, want 403", r.name, got)
				}
			}
			var targets []string
			e.db.Table("project_servers").Where("project_id = ?", pid).Pluck("server_id", &targets)
			if len(targets) != 1 || targets[0] != f["server"] {
				t.Errorf("targets after the refusals: %v, want only %s", targets, f["server"])
			}

			// An administrator adds the server; the owner still may not arm the project.
			if got := e.as("admin", "PUT", "/api/v1/projects/"+pid, withServers("", f["server"], "s-prod"), nil); got != http.StatusOK {
				t.Fatalf("admin adds the server: %d", got)
			}
			for _, r := range []struct {
				name, method, path string
				body               any
			}{
				{"deploy with the button", "POST", "/api/v1/projects/" + pid + "/runs", map[string]string{"ref": "main"}},
				{"create a trigger URL", "POST", "/api/v1/projects/" + pid + "/trigger-token", nil},
				{"install a hook", "POST", "/api/v1/projects/" + pid + "/hook", nil},
				{"set a webhook secret", "PUT", "/api/v1/projects/" + pid, withServers("0123456789abcdef-secret", f["server"], "s-prod")},
			} {
				if got := e.as("owner", r.method, r.path, r.body, nil); got != http.StatusForbidden {
					t.Errorf("%s: %d, want 403", r.name, got)
				}
			}
			var hash, sealed string
			e.db.Table("projects").Where("id = ?", pid).Select("trigger_token_hash").Scan(&hash)
			e.db.Table("projects").Where("id = ?", pid).Select("webhook_secret_sealed").Scan(&sealed)
			if hash != "" || sealed != "" {
				t.Errorf("after the refusals: trigger token hash %q, webhook secret %q, want neither", hash, sealed)
			}
			// Other edits stay the owner's to make.
			if got := e.as("owner", "PUT", "/api/v1/projects/"+pid, withServers("", f["server"], "s-prod"), nil); got != http.StatusOK {
				t.Errorf("edit keeping the targets: %d, want 200", got)
			}
			if got := e.as("owner", "PUT", "/api/v1/projects/"+pid, withServers("", f["server"]), nil); got != http.StatusOK {
				t.Errorf("remove the restricted server: %d, want 200", got)
			}

			// A rule lets the owner deploy there: every path opens.
			e.exec(`INSERT INTO server_group_rules (id, server_group_id, user_id, may_deploy) VALUES ('r-owner', 'sg-prod', 'u-owner', TRUE)`)
			if got := e.as("owner", "PUT", "/api/v1/projects/"+pid, withServers("0123456789abcdef-secret", f["server"], "s-prod"), nil); got != http.StatusOK {
				t.Errorf("with a rule, add the server and set a webhook secret: %d, want 200", got)
			}
			if got := e.as("owner", "POST", "/api/v1/projects/"+pid+"/trigger-token", nil, nil); got != http.StatusCreated {
				t.Errorf("with a rule, create a trigger URL: %d, want 201", got)
			}
			var creator string
			e.db.Table("projects").Where("id = ?", pid).Select("trigger_token_created_by").Scan(&creator)
			if creator != "u-owner" {
				t.Errorf("trigger URL creator %q, want u-owner: the link acts with its creator's rights", creator)
			}
		})
	}
}
