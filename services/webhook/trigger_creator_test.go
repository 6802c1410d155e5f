package webhook

import (
	"net/http"
	"testing"
	"time"

	"fabu.dev/libs/store/storetest"
)

// TestTriggerURLActsWithItsCreatorsRights: a trigger URL deploys only while the user who
// made it may deploy the project: a project role at least its deploy_role, a server-group
// rule for every restricted target, an enabled account. Their rights are read when the URL
// fires, so a creator who loses them takes the URL's power with them.
func TestTriggerURLActsWithItsCreatorsRights(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			now := time.Now().UTC()
			for _, q := range []string{
				`INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u-dev', 'dev', 'x', 'user', ?)`,
				`INSERT INTO project_group_members (id, project_group_id, user_id, role) VALUES ('m-dev', 'default', 'u-dev', 'developer')`,
				`UPDATE projects SET project_group_id = 'default', deploy_role = 'developer' WHERE id = 'p1'`,
				`INSERT INTO server_groups (id, name) VALUES ('sg-prod', 'production')`,
				`INSERT INTO servers (id, name, host, port, ssh_user, host_key, server_group_id) VALUES ('s-prod', 'prod-1', '127.0.0.2', 22, 'deploy', 'k', 'sg-prod')`,
				`INSERT INTO project_servers (project_id, server_id) VALUES ('p1', 's-prod')`,
				`INSERT INTO server_group_rules (id, server_group_id, user_id, may_deploy) VALUES ('r-dev', 'sg-prod', 'u-dev', TRUE)`,
			} {
				var args []any
				if q[:6] == "INSERT" && q[12:17] == "users" {
					args = []any{now}
				}
				if err := e.db.Exec(q, args...).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec := func(q string) {
				t.Helper()
				if err := e.db.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			fire := func(name string, want int) {
				t.Helper()
				before := len(e.runs(t))
				status, out := e.post(t, "/trigger/"+tokenA, nil, nil)
				if status != want {
					t.Errorf("%s: status %d %v, want %d", name, status, out, want)
				}
				wantRuns := before
				if want == http.StatusAccepted {
					wantRuns++
				}
				if n := len(e.runs(t)); n != wantRuns {
					t.Errorf("%s: %d runs, want %d", name, n, wantRuns)
				}
				if d := e.lastDelivery(t); want != http.StatusAccepted && d.Verdict != VerdictRejected {
					t.Errorf("%s: delivery verdict %q, want %q", name, d.Verdict, VerdictRejected)
				}
			}

			e.setTriggerTokenBy(t, tokenA, "u-dev")
			fire("creator may deploy", http.StatusAccepted)

			exec(`DELETE FROM server_group_rules WHERE id = 'r-dev'`)
			fire("creator lost the server-group rule", http.StatusForbidden)
			exec(`INSERT INTO server_group_rules (id, server_group_id, user_id, may_deploy, may_terminal) VALUES ('r-dev', 'sg-prod', 'u-dev', FALSE, TRUE)`)
			fire("creator's rule allows a terminal, not a deploy", http.StatusForbidden)
			exec(`UPDATE server_group_rules SET may_deploy = TRUE WHERE id = 'r-dev'`)
			fire("rule restored", http.StatusAccepted)

			exec(`UPDATE project_group_members SET role = 'viewer' WHERE id = 'm-dev'`)
			fire("creator demoted to viewer", http.StatusForbidden)
			exec(`UPDATE project_group_members SET role = 'developer' WHERE id = 'm-dev'`)
			exec(`UPDATE projects SET deploy_role = 'maintainer' WHERE id = 'p1'`)
			fire("deploy role raised above the creator's", http.StatusForbidden)
			exec(`UPDATE projects SET deploy_role = 'developer' WHERE id = 'p1'`)

			// A rule through a user group counts like one of the user's own.
			exec(`DELETE FROM server_group_rules WHERE id = 'r-dev'`)
			exec(`INSERT INTO user_groups (id, name) VALUES ('ug-ops', 'ops')`)
			exec(`INSERT INTO user_group_members (group_id, user_id) VALUES ('ug-ops', 'u-dev')`)
			exec(`INSERT INTO server_group_rules (id, server_group_id, user_group_id, may_deploy) VALUES ('r-ops', 'sg-prod', 'ug-ops', TRUE)`)
			fire("rule through a user group", http.StatusAccepted)

			if err := e.db.Exec(`UPDATE users SET disabled_at = ? WHERE id = 'u-dev'`, now).Error; err != nil {
				t.Fatal(err)
			}
			fire("creator disabled", http.StatusForbidden)
			exec(`UPDATE users SET disabled_at = NULL WHERE id = 'u-dev'`)
			fire("creator enabled again", http.StatusAccepted)

			e.setTriggerTokenBy(t, tokenA, "u-gone")
			fire("creator deleted", http.StatusForbidden)
			e.setTriggerTokenBy(t, tokenA, "")
			fire("a URL made before creators were recorded", http.StatusForbidden)
			e.setTriggerTokenBy(t, tokenA, "u-link-admin")
			fire("an administrator's URL", http.StatusAccepted)
		})
	}
}
