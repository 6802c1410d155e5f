package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/tickets"
)

// VerdictTicket is the verdict of a delivery that would have deployed a project whose
// environment rules need an approved release ticket: it opened a pending ticket instead,
// which deploys the same commit once approved.
const VerdictTicket = "ticket"

// pinForTicket makes sure run r names a full commit when its project needs a ticket for a
// run nobody asked for in person, because a ticket approves exactly one commit: a push
// carries it; a trigger URL's branch or tag is resolved with the repository (outside any
// transaction: it may take a while). Projects that need no ticket are left alone.
func (s *Service) pinForTicket(ctx context.Context, r *runs.Run) error {
	rules, err := tickets.LoadRules(s.db.WithContext(ctx), r.ProjectID)
	if err != nil {
		return err
	}
	need, _, err := rules.SystemNeedsTicket(s.now())
	if err != nil || !need || gitref.IsFullCommit(r.CommitSHA) {
		return err
	}
	var repo struct{ GitURL, GitCredentialsSealed string }
	if err := s.db.WithContext(ctx).Table("projects").Select("git_url, git_credentials_sealed").Where("id = ?", r.ProjectID).
		Scan(&repo).Error; err != nil {
		return fmt.Errorf("load project repository: %w", err)
	}
	gitURL := repo.GitURL
	if repo.GitCredentialsSealed != "" { // sealed apart from the URL; git gets them from its environment
		info, err := s.secrets.Open(repo.GitCredentialsSealed, secret.GitCredentialsPlace(r.ProjectID))
		if err != nil {
			return fmt.Errorf("open repository credentials: %w", err)
		}
		gitURL = gitref.JoinUserinfo(gitURL, string(info))
	}
	sha, err := tickets.ResolveRemote(ctx, gitURL, r.Ref)
	if err != nil {
		return err
	}
	r.CommitSHA = sha
	return nil
}

// openTicketInstead opens a pending ticket for run r inside tx when the project's rules need
// one, and marks delivery d with the ticket verdict; it reports whether it did, in which case
// no run is requested. The requester is who pushed, or the trigger URL.
func (s *Service) openTicketInstead(tx *gorm.DB, d *Delivery, r *runs.Run) (bool, error) {
	source := tickets.SourceWebhook
	if r.Trigger == TriggerRun {
		source = tickets.SourceLink
	}
	requester := r.TriggeredBy
	if strings.TrimSpace(requester) == "" {
		requester = "webhook"
	}
	t, why, err := tickets.OpenInstead(tx, r, source, requester, d.ID, s.now())
	if err != nil || t == nil {
		return false, err
	}
	d.Verdict, d.RunID = VerdictTicket, ""
	d.Reason = truncate(fmt.Sprintf("%s; %s: opened release ticket %s for commit %.12s, which deploys once approved", d.Reason, why, t.ID, t.CommitSHA), 500)
	return true, nil
}

// ticketVerdict answers a delivery that opened a ticket, and audits the ticket's creation
// on behalf of actor (the pusher or the trigger URL) from the delivery's address.
func (s *Service) ticketVerdict(c *gin.Context, d *Delivery, actor, actorID string) verdict {
	detail := map[string]any{"delivery_id": d.ID, "ref": d.Ref, "reason": d.Reason, "platform": d.Platform}
	if xff := c.Request.Header.Get("X-Forwarded-For"); xff != "" {
		detail["forwarded_for"] = xff
	}
	var ticketIDs []string
	if d.ProjectID != nil {
		detail["project_id"] = *d.ProjectID
	}
	if err := s.db.WithContext(context.WithoutCancel(c.Request.Context())).Model(&tickets.Ticket{}).
		Where("delivery_id = ?", d.ID).Limit(1).Pluck("id", &ticketIDs).Error; err != nil {
		s.log.Error("look up the ticket of a delivery", "delivery", d.ID, "err", err)
	}
	ticketID := ""
	if len(ticketIDs) > 0 {
		ticketID = ticketIDs[0]
	}
	e := audit.Entry{At: s.now(), Actor: actor, ActorID: actorID, Action: "ticket.create", Target: "ticket", TargetID: ticketID,
		Outcome: audit.OK, IP: c.RemoteIP(), UserAgent: c.Request.UserAgent(), Detail: detail}
	if err := audit.Record(s.db.WithContext(context.WithoutCancel(c.Request.Context())), e); err != nil {
		s.log.Error("audit log: entry not recorded", "action", e.Action, "delivery", d.ID, "err", err)
	}
	return verdict{status: http.StatusAccepted, verdict: VerdictTicket, reason: d.Reason}
}
