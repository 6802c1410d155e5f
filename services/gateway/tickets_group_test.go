package gateway

import (
	"testing"

	"fabu.dev/libs/store/storetest"
)

// Approvers may be a user group alone: its members approve (and see the ticket) even without
// a role on the project, while maintainers outside it no longer do.
func TestTicketApproverGroup(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			e.exec(`INSERT INTO user_groups (id, name) VALUES ('ug-release', 'release-managers')`)
			e.exec(`INSERT INTO user_group_members (group_id, user_id) VALUES ('ug-release', 'u-outsider')`)
			rules := e.setRules(pid, map[string]any{"approval": "required", "approver_role": "", "approver_group": "release-managers"})
			if rules.ApproverGroup != "release-managers" || rules.ApproverRole != "" {
				t.Fatalf("rules = %+v", rules)
			}
			tk := e.openTicket("developer", pid, map[string]any{"title": "by the group", "commit": pinned})
			if st := e.as("maintainer", "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, nil); st != 403 {
				t.Errorf("maintainer outside the approver group approves = %d, want 403", st)
			}
			var list []TicketBody
			e.as("outsider", "GET", "/api/v1/tickets?mine=approve", nil, &list)
			if len(list) != 1 || list[0].ID != tk.ID {
				t.Errorf("group member's tickets to approve = %+v, want the one", list)
			}
			var got TicketBody
			if st := e.as("outsider", "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, &got); st != 200 || got.Status != "started" {
				t.Errorf("group member approves = %d %+v, want 200 started", st, got)
			}
			// Without approvers nobody could ever approve: refused.
			if st := e.as("owner", "PUT", "/api/v1/projects/"+pid+"/approval", map[string]any{"approver_group": ""}, nil); st != 400 {
				t.Errorf("removing the only approvers = %d, want 400", st)
			}
		})
	}
}
