package webhook

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/store/storetest"
)

// requireApproval gives project p1 the environment rule "every deploy needs an approved
// release ticket", as the gateway stores it.
func (e *env) requireApproval(t *testing.T) {
	t.Helper()
	if err := e.db.Exec(`INSERT INTO environment_rules (project_id, approval, approvals_needed) VALUES ('p1', 'required', 1)`).Error; err != nil {
		t.Fatal(err)
	}
}

type ticketRow struct {
	ID, Ref, CommitSHA, Status, Source, RequestedBy, RequesterID, DeliveryID string
}

func (e *env) tickets(t *testing.T) []ticketRow {
	t.Helper()
	var ts []ticketRow
	if err := e.db.Table("release_tickets").Select("id, ref, commit_sha, status, source, requested_by, requester_id, delivery_id").
		Order("created_at").Scan(&ts).Error; err != nil {
		t.Fatal(err)
	}
	return ts
}

// A push to a project that needs approval deploys nothing: it opens one pending ticket for
// the pushed commit on behalf of the pusher, and the delivery's verdict says so. A
// redelivery of the same push is a duplicate and opens no second ticket.
func TestPushToProtectedProjectOpensATicket(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			e.requireApproval(t)
			h := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret, "Idempotency-Key": "push-1"}
			body := push(t, "refs/heads/master", "ship it")
			status, out := e.post(t, "/hooks/gitlab/shop", body, h)
			if status != http.StatusAccepted || out["verdict"] != VerdictTicket || out["run_id"] != nil {
				t.Fatalf("push = %d %v, want 202 with verdict ticket and no run", status, out)
			}
			if rs := e.runs(t); len(rs) != 0 {
				t.Errorf("runs = %v, want none", rs)
			}
			ts := e.tickets(t)
			if len(ts) != 1 {
				t.Fatalf("tickets = %v, want 1", ts)
			}
			tk := ts[0]
			want := ticketRow{ID: tk.ID, Ref: "master", CommitSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Status: "pending",
				Source: "webhook", RequestedBy: "jsmith", DeliveryID: tk.DeliveryID}
			if tk != want {
				t.Errorf("ticket = %+v, want %+v", tk, want)
			}
			d := e.lastDelivery(t)
			if d.Verdict != VerdictTicket || d.ID != tk.DeliveryID || d.RunID != "" || !strings.Contains(d.Reason, tk.ID) {
				t.Errorf("delivery = %+v, want verdict ticket naming ticket %s", d, tk.ID)
			}
			if n := e.count(t, "audit_log", "action = 'ticket.create' AND target_id = ? AND actor = 'jsmith' AND actor_id = 'webhook' AND ip <> ''", tk.ID); n != 1 {
				t.Errorf("audit entries of the ticket's creation = %d, want 1", n)
			}
			if n := e.count(t, "outbox", "topic = 'fabu.ticket.changed.v1' AND msg_key = ?", tk.ID); n != 1 {
				t.Errorf("ticket events = %d, want 1", n)
			}

			status, out = e.post(t, "/hooks/gitlab/shop", body, h)
			if status != http.StatusOK || out["verdict"] != VerdictDuplicate {
				t.Errorf("redelivery = %d %v, want 200 duplicate", status, out)
			}
			if n := len(e.tickets(t)); n != 1 {
				t.Errorf("tickets after the redelivery = %d, want 1", n)
			}
		})
	}
}

// A trigger URL on a project that needs approval opens a ticket too, pinning the commit its
// branch points at in the repository (asked with git ls-remote); a ref the repository does
// not have is refused with a clear message.
func TestTriggerURLOnProtectedProjectPinsTheBranch(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			e.requireApproval(t)
			e.setTriggerToken(t, tokenA)
			repo, head := gitRepo(t)
			if err := e.db.Exec(`UPDATE projects SET git_url = ? WHERE id = 'p1'`, repo).Error; err != nil {
				t.Fatal(err)
			}
			status, out := e.post(t, "/trigger/"+tokenA, nil, nil)
			if status != http.StatusAccepted || out["verdict"] != VerdictTicket {
				t.Fatalf("trigger = %d %v, want 202 ticket", status, out)
			}
			ts := e.tickets(t)
			if len(ts) != 1 || ts[0].CommitSHA != head || ts[0].Source != "link" || ts[0].RequestedBy != "trigger URL" || ts[0].Ref != "master" {
				t.Fatalf("tickets = %+v, want one from the link pinning %s", ts, head)
			}
			if len(e.runs(t)) != 0 {
				t.Error("a run was requested for a project that needs approval")
			}
			status, out = e.post(t, "/trigger/"+tokenA, []byte(`{"ref":"no-such-branch"}`), nil)
			if status != http.StatusNotFound || !strings.Contains(out["message"].(string), "no-such-branch") {
				t.Errorf("unknown branch = %d %v, want 404 naming it", status, out)
			}
			if n := len(e.tickets(t)); n != 1 {
				t.Errorf("tickets = %d after a refused trigger, want 1", n)
			}
		})
	}
}

// gitRepo makes a repository with one commit on master and returns its path and head.
func gitRepo(t *testing.T) (string, string) {
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
	git("init", "-q", "-b", "master")
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	return dir, git("rev-parse", "HEAD")
}
