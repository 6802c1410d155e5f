package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/store/storetest"
)

// Release tickets and environment rules, on SQLite and PostgreSQL, through the API as the
// matrix's principals (owner, maintainer, developer, viewer of the default group; admin).

const pinned = "0123456789abcdef0123456789abcdef01234567"

// ticketProject adds a project to the default group with no target servers.
func ticketProject(e *matrixEnv, name, gitURL string) string {
	id := "p-" + name
	e.exec(`INSERT INTO projects (id, name, git_url, type, deploy_path, branch) VALUES (?, ?, ?, 'static', ?, 'main')`,
		id, name, gitURL, "/srv/"+name)
	return id
}

func (e *matrixEnv) count(table, where string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Table(table).Where(where, args...).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *matrixEnv) setRules(pid string, body map[string]any) ApprovalBody {
	e.t.Helper()
	var out ApprovalBody
	if got := e.as("owner", "PUT", "/api/v1/projects/"+pid+"/approval", body, &out); got != 200 {
		e.t.Fatalf("PUT approval %v = %d", body, got)
	}
	return out
}

func (e *matrixEnv) openTicket(who, pid string, body map[string]any) TicketBody {
	e.t.Helper()
	var tk TicketBody
	if got := e.as(who, "POST", "/api/v1/projects/"+pid+"/tickets", body, &tk); got != 201 {
		e.t.Fatalf("%s opens ticket %v = %d", who, body, got)
	}
	return tk
}

func TestTicketPolicies(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			deploy := func(who string) int {
				return e.as(who, "POST", "/api/v1/projects/"+pid+"/runs", map[string]any{"ref": "main"}, nil)
			}

			// none: the deploy role alone decides.
			if got := deploy("developer"); got != 201 {
				t.Errorf("policy none: developer deploys = %d, want 201", got)
			}
			var acc ApprovalBody
			e.as("developer", "GET", "/api/v1/projects/"+pid+"/approval", nil, &acc)
			if acc.Approval != "none" || acc.TicketNeeded || !acc.MayRequest || acc.MayApprove || acc.ApproverRole != RoleMaintainer || acc.ApprovalsNeeded != 1 || acc.TicketTTLHours != 168 {
				t.Errorf("default rules as developer = %+v", acc)
			}

			// Deploy links ask for a confirmation unless an owner switches that off; the
			// switch keeps the other rules and survives a change of them.
			if !acc.LinkConfirm {
				t.Errorf("default rules: link_confirm = false, want true")
			}
			if got := e.as("maintainer", "PUT", "/api/v1/projects/"+pid+"/approval", map[string]any{"link_confirm": false}, nil); got != 403 {
				t.Errorf("maintainer switches link_confirm = %d, want 403", got)
			}
			if got := e.as("owner", "PUT", "/api/v1/projects/"+pid+"/approval", map[string]any{"link_confirm": "no"}, nil); got != 400 {
				t.Errorf("link_confirm \"no\" = %d, want 400", got)
			}
			e.setRules(pid, map[string]any{"link_confirm": false})
			e.setRules(pid, map[string]any{"approvals_needed": 2})
			e.as("viewer", "GET", "/api/v1/projects/"+pid+"/approval", nil, &acc)
			if acc.LinkConfirm || acc.ApprovalsNeeded != 2 || acc.Approval != "none" {
				t.Errorf("after switching link_confirm off = %+v, want it off with 2 approvals and no policy", acc)
			}
			e.setRules(pid, map[string]any{"link_confirm": true, "approvals_needed": 1})
			e.as("viewer", "GET", "/api/v1/projects/"+pid+"/approval", nil, &acc)
			if !acc.LinkConfirm {
				t.Errorf("after switching link_confirm on = %+v", acc)
			}

			// Only owners change the rules, with valid values.
			if got := e.as("maintainer", "PUT", "/api/v1/projects/"+pid+"/approval", map[string]any{"approval": "none"}, nil); got != 403 {
				t.Errorf("maintainer changes rules = %d, want 403", got)
			}
			for _, bad := range []map[string]any{
				{"approval": "sometimes"}, {"approvals_needed": 0}, {"approvals_needed": 11}, {"approver_role": "viewer"},
				{"approver_role": ""}, {"approval_role": "viewer"}, {"approver_group": "nobody"}, {"ticket_ttl_hours": 0},
				{"time_zone": "Mars/Olympus"}, {"deploy_windows": []map[string]any{{"days": []int{8}, "start": "09:00", "end": "18:00"}}},
				{"deploy_windows": []map[string]any{{"days": []int{1}, "start": "9am", "end": "18:00"}}},
				{"status": "approved"},
			} {
				if got := e.as("owner", "PUT", "/api/v1/projects/"+pid+"/approval", bad, nil); got != 400 {
					t.Errorf("PUT approval %v = %d, want 400", bad, got)
				}
			}

			// required: nobody deploys directly, administrators included; the refusal says why.
			e.setRules(pid, map[string]any{"approval": "required"})
			for _, who := range []string{"developer", "maintainer", "owner", "admin"} {
				if got := deploy(who); got != 403 {
					t.Errorf("policy required: %s deploys = %d, want 403", who, got)
				}
			}
			_, refusal := e.asAny("developer", "POST", "/api/v1/projects/"+pid+"/runs", map[string]any{})
			if msg, _ := refusal["message"].(string); !strings.Contains(msg, "release ticket") || !strings.Contains(msg, "/tickets") {
				t.Errorf("refusal = %v, want it to say a ticket is needed and where to ask", refusal)
			}

			// required below maintainer: developers need a ticket, maintainers do not.
			e.setRules(pid, map[string]any{"approval": "required_below_role", "approval_role": "maintainer"})
			if got := deploy("developer"); got != 403 {
				t.Errorf("below-role: developer deploys = %d, want 403", got)
			}
			if got := deploy("maintainer"); got != 201 {
				t.Errorf("below-role: maintainer deploys = %d, want 201", got)
			}
			e.as("developer", "GET", "/api/v1/projects/"+pid+"/approval", nil, &acc)
			if !acc.TicketNeeded || acc.Reason == "" {
				t.Errorf("rules as developer = %+v, want a ticket needed with a reason", acc)
			}

			// Deploy windows: a window that is never now makes everyone need a ticket.
			e.setRules(pid, map[string]any{"approval": "none", "time_zone": "Asia/Shanghai", "deploy_windows": []map[string]any{closedWindow(time.Now())}})
			if got := deploy("maintainer"); got != 403 {
				t.Errorf("outside the deploy window: maintainer deploys = %d, want 403", got)
			}
			e.setRules(pid, map[string]any{"deploy_windows": []map[string]any{}})
			if got := deploy("maintainer"); got != 201 {
				t.Errorf("no windows: maintainer deploys = %d, want 201", got)
			}

			// Viewers cannot ask for a release; outsiders do not even see the project.
			body := map[string]any{"title": "release 1", "commit": pinned}
			if got := e.as("viewer", "POST", "/api/v1/projects/"+pid+"/tickets", body, nil); got != 403 {
				t.Errorf("viewer opens ticket = %d, want 403", got)
			}
			if got := e.as("outsider", "POST", "/api/v1/projects/"+pid+"/tickets", body, nil); got != 404 {
				t.Errorf("outsider opens ticket = %d, want 404", got)
			}
			if n := e.count("release_tickets", "1 = 1"); n != 0 {
				t.Errorf("tickets = %d, want none", n)
			}
		})
	}
}

// closedWindow is a deploy window (in Asia/Shanghai) that excludes now: one hour, starting
// two hours from now, on today's weekday.
func closedWindow(now time.Time) map[string]any {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	l := now.In(loc)
	day := int(l.Weekday())
	if day == 0 {
		day = 7
	}
	start := l.Add(2 * time.Hour)
	if start.Day() != l.Day() { // late evening: use the early morning, which has passed
		return map[string]any{"days": []int{day}, "start": "00:00", "end": "00:01"}
	}
	return map[string]any{"days": []int{day}, "start": start.Format("15:04"), "end": start.Add(time.Minute).Format("15:04")}
}

// asAny calls path as principal name and decodes any JSON answer, errors included.
func (e *matrixEnv) asAny(name, method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, jsonBody(body))
	req.Header.Set("Authorization", "Bearer "+e.tokens[name])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestTicketApproval(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			e.setRules(pid, map[string]any{"approval": "required", "approvals_needed": 2})

			tk := e.openTicket("developer", pid, map[string]any{"title": "Release 1.2", "description": "fixes the cart", "ref": "main", "commit": strings.ToUpper(pinned)})
			if tk.Status != "pending" || tk.Commit != pinned || tk.RequestedBy != "developer" || tk.ApprovalsNeeded != 2 || !tk.Mine || tk.MayApprove || !tk.MayCancel {
				t.Fatalf("opened %+v", tk)
			}
			path := "/api/v1/tickets/" + tk.ID

			// The requester never approves their own ticket; a viewer is no approver.
			if got := e.as("developer", "POST", path+"/approve", nil, nil); got != 403 {
				t.Errorf("self-approval = %d, want 403", got)
			}
			if got := e.as("viewer", "POST", path+"/approve", nil, nil); got != 403 {
				t.Errorf("viewer approves = %d, want 403", got)
			}
			var list []TicketBody
			e.as("maintainer", "GET", "/api/v1/tickets?mine=approve", nil, &list)
			if len(list) != 1 || list[0].ID != tk.ID || !list[0].MayApprove {
				t.Errorf("maintainer's tickets to approve = %+v, want the one", list)
			}
			e.as("developer", "GET", "/api/v1/tickets?mine=approve", nil, &list)
			if len(list) != 0 {
				t.Errorf("developer's tickets to approve = %+v, want none (their own)", list)
			}

			// Two approvals are needed: the first leaves it pending, a repeat is refused.
			var got TicketBody
			if st := e.as("maintainer", "POST", path+"/approve", map[string]any{"comment": "looks good"}, &got); st != 200 || got.Status != "pending" || got.Approvals != 1 {
				t.Fatalf("first approval = %d %+v", st, got)
			}
			if st := e.as("maintainer", "POST", path+"/approve", nil, nil); st != 409 {
				t.Errorf("second approval by the same maintainer = %d, want 409", st)
			}
			if n := e.count("runs", "project_id = ?", pid); n != 0 {
				t.Fatalf("runs after one of two approvals = %d, want 0", n)
			}
			// The second approval approves it and starts exactly one run of the pinned commit.
			if st := e.as("owner", "POST", path+"/approve", nil, &got); st != 200 || got.Status != "started" || got.RunID == "" || got.Approvals != 2 || len(got.Reviews) != 2 {
				t.Fatalf("second approval = %d %+v", st, got)
			}
			if n := e.count("runs", "id = ? AND project_id = ? AND ref = 'main' AND commit_sha = ? AND trigger = 'ticket' AND triggered_by = 'developer' AND status = 'requested'",
				got.RunID, pid, pinned); n != 1 {
				t.Errorf("the ticket's run is not the pinned commit triggered by the requester")
			}
			if n := e.count("runs", "project_id = ?", pid); n != 1 {
				t.Errorf("runs = %d, want 1", n)
			}
			if st := e.as("admin", "POST", path+"/approve", nil, nil); st != 409 {
				t.Errorf("approving a started ticket = %d, want 409", st)
			}
			// A pass of the loop does not start it again.
			e.gateway(t).ticketPass(context.Background(), time.Now())
			if n := e.count("runs", "project_id = ?", pid); n != 1 {
				t.Errorf("runs after a loop pass = %d, want 1", n)
			}

			// Audited with who, from where; announced on the bus.
			for _, a := range []struct {
				action, actor string
				n             int64
			}{{"ticket.create", "developer", 1}, {"ticket.approve", "maintainer", 2}, {"ticket.approve", "owner", 1}, {"ticket.approve", "developer", 1}, {"ticket.start", "owner", 1}} {
				if n := e.count("audit_log", "action = ? AND actor = ? AND ip <> ''", a.action, a.actor); n != a.n {
					t.Errorf("audit %s by %s = %d entries, want %d", a.action, a.actor, n, a.n)
				}
			}
			var detail string
			e.db.Raw(`SELECT detail FROM audit_log WHERE action = 'ticket.start'`).Scan(&detail)
			if !strings.Contains(detail, `"approved_by":["maintainer","owner"]`) || !strings.Contains(detail, got.RunID) {
				t.Errorf("ticket.start detail = %s, want the approvers and the run", detail)
			}
			var statuses []string
			e.db.Raw(`SELECT payload FROM outbox WHERE topic = 'fabu.ticket.changed.v1' AND msg_key = ? ORDER BY seq`, tk.ID).Scan(&statuses)
			want := []string{`"status":"pending"`, `"status":"approved"`, `"status":"started"`}
			if len(statuses) != len(want) {
				t.Fatalf("ticket events = %v", statuses)
			}
			for i, w := range want {
				if !strings.Contains(statuses[i], w) {
					t.Errorf("event %d = %s, want %s", i, statuses[i], w)
				}
			}
		})
	}
}

func TestTicketRejectCancelExpire(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			e.setRules(pid, map[string]any{"approval": "required", "approvals_needed": 2})

			// A rejection needs a reason and ends the ticket, whatever approvals it had.
			a := e.openTicket("developer", pid, map[string]any{"title": "A", "commit": pinned})
			e.as("owner", "POST", "/api/v1/tickets/"+a.ID+"/approve", nil, nil)
			if got := e.as("maintainer", "POST", "/api/v1/tickets/"+a.ID+"/reject", nil, nil); got != 400 {
				t.Errorf("reject without a comment = %d, want 400", got)
			}
			var got TicketBody
			if st := e.as("maintainer", "POST", "/api/v1/tickets/"+a.ID+"/reject", map[string]any{"comment": "not during the sale"}, &got); st != 200 || got.Status != "rejected" {
				t.Fatalf("reject = %d %+v", st, got)
			}
			if st := e.as("admin", "POST", "/api/v1/tickets/"+a.ID+"/approve", nil, nil); st != 409 {
				t.Errorf("approve a rejected ticket = %d, want 409", st)
			}

			// Only the requester cancels (approvers reject).
			b := e.openTicket("developer", pid, map[string]any{"title": "B", "commit": pinned})
			if st := e.as("maintainer", "POST", "/api/v1/tickets/"+b.ID+"/cancel", nil, nil); st != 403 {
				t.Errorf("maintainer cancels the developer's ticket = %d, want 403", st)
			}
			if st := e.as("developer", "POST", "/api/v1/tickets/"+b.ID+"/cancel", map[string]any{"comment": "wrong commit"}, &got); st != 200 || got.Status != "cancelled" {
				t.Errorf("requester cancels = %d %+v", st, got)
			}

			// An expired ticket can be neither approved nor started.
			c := e.openTicket("developer", pid, map[string]any{"title": "C", "commit": pinned})
			e.exec(`UPDATE release_tickets SET expires_at = ? WHERE id = ?`, time.Now().UTC().Add(-time.Minute), c.ID)
			if st := e.as("owner", "POST", "/api/v1/tickets/"+c.ID+"/approve", nil, nil); st != 409 {
				t.Errorf("approve an expired ticket = %d, want 409", st)
			}
			// One approved (scheduled later) whose expiry passes is expired, not started.
			e.setRules(pid, map[string]any{"approvals_needed": 1})
			d := e.openTicket("developer", pid, map[string]any{"title": "D", "commit": pinned, "scheduled_at": time.Now().UTC().Add(time.Hour)})
			if st := e.as("owner", "POST", "/api/v1/tickets/"+d.ID+"/approve", nil, &got); st != 200 || got.Status != "approved" || got.RunID != "" {
				t.Fatalf("approve a scheduled ticket = %d %+v, want approved without a run", st, got)
			}
			e.exec(`UPDATE release_tickets SET expires_at = ?, scheduled_at = ? WHERE id = ?`, time.Now().UTC().Add(-time.Second), time.Now().UTC().Add(-time.Minute), d.ID)
			e.gateway(t).ticketPass(context.Background(), time.Now())
			for _, id := range []string{c.ID, d.ID} {
				if n := e.count("release_tickets", "id = ? AND status = 'expired' AND run_id = ''", id); n != 1 {
					t.Errorf("ticket %s not expired", id)
				}
				if n := e.count("audit_log", "action = 'ticket.expire' AND target_id = ?", id); n != 1 {
					t.Errorf("expiry of %s audited %d times, want 1", id, n)
				}
			}
			if n := e.count("runs", "project_id = ?", pid); n != 0 {
				t.Errorf("runs = %d, want none", n)
			}

			// Filters.
			var list []TicketBody
			e.as("viewer", "GET", "/api/v1/tickets?project_id="+pid+"&status=expired", nil, &list)
			if len(list) != 2 {
				t.Errorf("expired tickets seen by a viewer = %d, want 2", len(list))
			}
			e.as("outsider", "GET", "/api/v1/tickets", nil, &list)
			if len(list) != 0 {
				t.Errorf("outsider sees %d tickets, want 0", len(list))
			}
			if st := e.as("outsider", "GET", "/api/v1/tickets/"+a.ID, nil, nil); st != 404 {
				t.Errorf("outsider reads a ticket = %d, want 404", st)
			}
			if st := e.as("viewer", "GET", "/api/v1/tickets?status=done", nil, nil); st != 400 {
				t.Errorf("bad status filter = %d, want 400", st)
			}
		})
	}
}

// A ticket's requester cannot set what fabu decides: status, approvals, requester.
// Strict decoding refuses the request, and the refusal is in the audit log.
func TestTicketMassAssignmentRefused(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			for _, extra := range []map[string]any{{"status": "approved"}, {"approvals": 2}, {"requested_by": "owner"}, {"run_id": "x"}} {
				body := map[string]any{"title": "sneaky", "commit": pinned}
				for k, v := range extra {
					body[k] = v
				}
				if st := e.as("developer", "POST", "/api/v1/projects/"+pid+"/tickets", body, nil); st != 400 {
					t.Errorf("create with %v = %d, want 400", extra, st)
				}
			}
			for _, bad := range []map[string]any{
				{"commit": pinned}, {"title": "x", "commit": "abc123"}, {"title": "x", "ref": "main;id", "commit": pinned},
				{"title": "bell\a", "commit": pinned}, {"title": "x", "commit": pinned, "scheduled_at": time.Now().Add(-time.Hour)},
				{"title": "x", "commit": pinned, "scheduled_at": time.Now().Add(30 * 24 * time.Hour)},
			} {
				if st := e.as("developer", "POST", "/api/v1/projects/"+pid+"/tickets", bad, nil); st != 400 {
					t.Errorf("create %v = %d, want 400", bad, st)
				}
			}
			if n := e.count("release_tickets", "1 = 1"); n != 0 {
				t.Errorf("tickets = %d, want none", n)
			}
			if n := e.count("audit_log", "action = 'ticket.create' AND outcome = 'refused' AND actor = 'developer' AND detail LIKE ?", "%approved%"); n != 1 {
				t.Errorf("refused mass assignment audited %d times, want 1", n)
			}
		})
	}
}

// An approved ticket due for its scheduled start is started once, with its pinned commit,
// while two gateways on the same database run their loops at the same moment.
func TestScheduledTicketStartsOnceWithTwoGateways(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			pid := ticketProject(e, "shop", "https://gitlab.example.com/web/shop.git")
			e.setRules(pid, map[string]any{"approval": "required"})
			tk := e.openTicket("developer", pid, map[string]any{"title": "tonight", "commit": pinned, "scheduled_at": time.Now().UTC().Add(time.Hour)})
			var got TicketBody
			if st := e.as("maintainer", "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, &got); st != 200 || got.Status != "approved" {
				t.Fatalf("approve = %d %+v", st, got)
			}
			gateways := []*Service{e.gateway(t), e.gateway(t)}
			gateways[0].ticketPass(context.Background(), time.Now())
			if n := e.count("runs", "1 = 1"); n != 0 {
				t.Fatalf("runs before the scheduled time = %d, want 0", n)
			}
			e.exec(`UPDATE release_tickets SET scheduled_at = ? WHERE id = ?`, time.Now().UTC().Add(-time.Second), tk.ID)
			var wg sync.WaitGroup
			for round := 0; round < 3; round++ {
				for _, g := range gateways {
					wg.Add(1)
					go func() {
						defer wg.Done()
						g.ticketPass(context.Background(), time.Now())
					}()
				}
			}
			wg.Wait()
			if n := e.count("runs", "project_id = ? AND commit_sha = ? AND trigger = 'ticket'", pid, pinned); n != 1 {
				t.Errorf("runs of the ticket = %d, want exactly 1", n)
			}
			if n := e.count("runs", "1 = 1"); n != 1 {
				t.Errorf("runs = %d, want 1", n)
			}
			if n := e.count("release_tickets", "id = ? AND status = 'started' AND run_id <> ''", tk.ID); n != 1 {
				t.Error("ticket not started with its run")
			}
			if n := e.count("audit_log", "action = 'ticket.start' AND actor = 'system'"); n != 1 {
				t.Errorf("ticket.start audited %d times, want 1", n)
			}
		})
	}
}

// Without a commit, a ticket pins the commit its ref points at when it is opened: a push
// after that does not change what deploys.
func TestTicketPinsTheRefsCommit(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newMatrixEnv(t, driver)
			repo, git := gitRepo(t)
			first := git("rev-parse", "HEAD")
			pid := ticketProject(e, "site", repo)
			tk := e.openTicket("developer", pid, map[string]any{"title": "ship", "ref": "main"})
			if tk.Commit != first || tk.Ref != "main" {
				t.Fatalf("ticket pins %s at %s, want %s", tk.Commit, tk.Ref, first)
			}
			if err := os.WriteFile(filepath.Join(repo, "index.html"), []byte("v2"), 0o644); err != nil {
				t.Fatal(err)
			}
			git("commit", "-q", "-am", "v2")
			var got TicketBody
			if st := e.as("maintainer", "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, &got); st != 200 || got.Status != "started" {
				t.Fatalf("approve = %d %+v", st, got)
			}
			if n := e.count("runs", "id = ? AND commit_sha = ?", got.RunID, first); n != 1 {
				t.Error("the run does not deploy the pinned commit")
			}
			if st := e.as("developer", "POST", "/api/v1/projects/"+pid+"/tickets", map[string]any{"title": "x", "ref": "nope"}, nil); st != 404 {
				t.Errorf("ticket for a ref the repository lacks = %d, want 404", st)
			}
		})
	}
}

// gitRepo makes a repository with one commit on main; git runs git in it.
func gitRepo(t *testing.T) (string, func(args ...string) string) {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	return dir, git
}

// gateway is another gateway service on e's database, as a second process would be.
func (e *matrixEnv) gateway(t *testing.T) *Service {
	t.Helper()
	s, err := New(Config{Secrets: testKeyring(t)}, e.db, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
