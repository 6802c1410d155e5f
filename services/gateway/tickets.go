package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
	"fabu.dev/libs/tickets"
)

// Release tickets: a request to deploy one pinned commit that approvers approve (or
// reject); once enough have approved it starts its run, at once or at its scheduled time
// (tickets_loop.go). Who may do what is in authz.go (onTicket, reviewTicket, cancelTicket)
// and tickets_rules.go; the record and its transitions are libs/tickets.

// TicketBody is a ticket as the API shows it.
type TicketBody struct {
	ID              string       `json:"id"`
	ProjectID       string       `json:"project_id"`
	Project         string       `json:"project"`
	Ref             string       `json:"ref"`
	Commit          string       `json:"commit"`
	Title           string       `json:"title"`
	Description     string       `json:"description"`
	Status          string       `json:"status"`
	Source          string       `json:"source"`
	RequestedBy     string       `json:"requested_by"`
	Approvals       int          `json:"approvals"`
	ApprovalsNeeded int          `json:"approvals_needed"`
	ScheduledAt     *time.Time   `json:"scheduled_at"`
	ExpiresAt       time.Time    `json:"expires_at"`
	RunID           string       `json:"run_id,omitempty"`
	RunStatus       string       `json:"run_status,omitempty"`
	CreatedAt       time.Time    `json:"created_at"`
	DecidedAt       *time.Time   `json:"decided_at"`
	StartedAt       *time.Time   `json:"started_at"`
	Reviews         []ReviewBody `json:"reviews"`
	// For the caller.
	MayApprove bool `json:"may_approve"` // an approver, not the requester, not yet decided, ticket pending
	MayCancel  bool `json:"may_cancel"`
	Mine       bool `json:"mine"`
}

// ReviewBody is one approver's decision.
type ReviewBody struct {
	Reviewer  string    `json:"reviewer"`
	Decision  string    `json:"decision"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// ticketRequest opens a ticket. Nothing else may be set by the requester: status,
// approvals, requester and expiry are fabu's (strict decoding refuses other fields).
type ticketRequest struct {
	Ref         string     `json:"ref"`
	Commit      string     `json:"commit"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	ScheduledAt *time.Time `json:"scheduled_at"`
}

// reviewRequest carries an approver's (or the requester's) comment.
type reviewRequest struct {
	Comment string `json:"comment"`
}

// Limits of ticket text.
const (
	maxTicketTitle       = 200
	maxTicketDescription = 10_000
	maxTicketComment     = 2_000
	maxTicketList        = 200
)

func (s *Service) ticketRoutes(api gin.IRoutes) {
	s.approvalRoutes(api) // GET, PUT /projects/:id/approval (tickets_rules.go)
	api.POST("/projects/:id/tickets", s.createTicket)
	api.GET("/tickets", s.listTickets)
	api.GET("/tickets/:id", s.getTicket)
	api.POST("/tickets/:id/approve", func(c *gin.Context) { s.reviewTicket(c, tickets.DecisionApprove) })
	api.POST("/tickets/:id/reject", func(c *gin.Context) { s.reviewTicket(c, tickets.DecisionReject) })
	api.POST("/tickets/:id/cancel", s.cancelTicket)
}

// checkText checks a free-text field: valid UTF-8, no control characters but newlines and
// tabs, at most max bytes.
func checkText(field, v string, maxLen int) error {
	if len(v) > maxLen || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool {
		return r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f
	}) {
		return apperr.Invalid("%s must be text of at most %d bytes without control characters", field, maxLen)
	}
	return nil
}

// createTicket opens a pending ticket on a project: the requester names a ref (default:
// the project's branch) and optionally the commit; fabu pins the commit the ref points at
// now, so what is approved is what deploys.
func (s *Service) createTicket(c *gin.Context) {
	var req ticketRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	cl := currentCaller(c)
	now := time.Now().UTC()
	req.Title, req.Ref, req.Commit = strings.TrimSpace(req.Title), strings.TrimSpace(req.Ref), strings.ToLower(strings.TrimSpace(req.Commit))
	if req.Title == "" {
		httpx.Fail(c, s.log, apperr.Invalid("title is required: say what is released and why"))
		return
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"title", req.Title, maxTicketTitle}, {"description", req.Description, maxTicketDescription}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	p, err := s.findProject(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if req.Ref == "" {
		req.Ref = p.Branch
	}
	if gitref.Valid(req.Ref) != nil && !gitref.IsFullCommit(req.Ref) {
		httpx.Fail(c, s.log, apperr.Invalid("ref %q is neither a valid branch or tag name nor a full commit id", req.Ref))
		return
	}
	if req.Commit != "" && !gitref.IsFullCommit(req.Commit) {
		httpx.Fail(c, s.log, apperr.Invalid("commit %q is not a full commit id (40 or 64 hexadecimal digits)", req.Commit))
		return
	}
	if !cl.Admin {
		denied, err := s.serversDenied(ctx, cl, "may_deploy", "SELECT server_id FROM project_servers WHERE project_id = ?", p.ID)
		if err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
		if len(denied) > 0 {
			httpx.Fail(c, s.log, apperr.Forbidden("no server group rule lets you deploy to %v, so you cannot request a release there", denied))
			return
		}
	}
	rules, err := tickets.LoadRules(s.db.WithContext(ctx), p.ID)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	expires := now.Add(rules.TTL())
	if req.ScheduledAt != nil {
		at := req.ScheduledAt.UTC()
		if at.Before(now.Add(-time.Minute)) || !at.Before(expires) {
			httpx.Fail(c, s.log, apperr.Invalid("scheduled_at must be between now and the ticket's expiry (%s)", expires.Format(time.RFC3339)))
			return
		}
		req.ScheduledAt = &at
	}
	if req.Commit == "" {
		if req.Commit, err = s.resolveTicketRef(ctx, p, req.Ref); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	t := &tickets.Ticket{ProjectID: p.ID, Ref: req.Ref, CommitSHA: req.Commit, Title: req.Title, Description: req.Description,
		Source: tickets.SourceUser, RequestedBy: cl.Username, RequesterID: cl.ID, ApprovalsNeeded: rules.ApprovalsNeeded,
		ScheduledAt: req.ScheduledAt, ExpiresAt: expires}
	if err := s.db.Tx(ctx, func(tx *gorm.DB) error { return tickets.Open(tx, t, now) }); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.kick()
	out, err := s.ticketBody(ctx, cl, *t, true)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

// resolveTicketRef pins ref of project p to a commit: through the project's forge
// connection when it has one (private repositories), else by asking the repository.
func (s *Service) resolveTicketRef(ctx context.Context, p Project, ref string) (string, error) {
	if gitref.IsFullCommit(ref) {
		return strings.ToLower(ref), nil
	}
	if p.ConnectionID != "" && p.RepoPath != "" {
		pf, err := s.findProjectForge(ctx, p.ID)
		if err != nil {
			return "", err
		}
		client, conn, err := s.projectClient(ctx, pf)
		if err != nil {
			return "", err
		}
		commits, _, err := client.Commits(ctx, p.RepoPath, forge.ListOptions{Page: 1, PerPage: 1, Ref: ref})
		if err != nil {
			return "", platformError(conn.Name, err)
		}
		if len(commits) == 0 || !gitref.IsFullCommit(commits[0].SHA) {
			return "", apperr.NotFound("%s has no commit at %q", p.RepoPath, ref)
		}
		return strings.ToLower(commits[0].SHA), nil
	}
	remote, err := s.remoteURL(p)
	if err != nil {
		return "", err
	}
	return tickets.ResolveRemote(ctx, remote, ref)
}

// ticketRow is a ticket with its project's name.
type ticketRow struct {
	tickets.Ticket
	ProjectName string
}

func (s *Service) ticketBody(ctx context.Context, cl caller, t tickets.Ticket, withReviews bool) (TicketBody, error) {
	db := s.db.WithContext(ctx)
	out := TicketBody{ID: t.ID, ProjectID: t.ProjectID, Ref: t.Ref, Commit: t.CommitSHA, Title: t.Title,
		Description: t.Description, Status: string(t.Status), Source: t.Source, RequestedBy: t.RequestedBy,
		ApprovalsNeeded: t.ApprovalsNeeded, ScheduledAt: t.ScheduledAt, ExpiresAt: t.ExpiresAt, RunID: t.RunID,
		CreatedAt: t.CreatedAt, DecidedAt: t.DecidedAt, StartedAt: t.StartedAt, Reviews: []ReviewBody{}}
	if err := db.Table("projects").Select("name").Where("id = ?", t.ProjectID).Scan(&out.Project).Error; err != nil {
		return out, fmt.Errorf("load project name: %w", err)
	}
	var reviews []tickets.Review
	if err := db.Where("ticket_id = ?", t.ID).Order("created_at, id").Find(&reviews).Error; err != nil {
		return out, fmt.Errorf("load reviews of ticket %s: %w", t.ID, err)
	}
	reviewed := false
	for _, r := range reviews {
		if r.Decision == tickets.DecisionApprove {
			out.Approvals++
		}
		reviewed = reviewed || r.ReviewerID == cl.ID
		if withReviews {
			out.Reviews = append(out.Reviews, ReviewBody{Reviewer: r.Reviewer, Decision: r.Decision, Comment: r.Comment, CreatedAt: r.CreatedAt})
		}
	}
	if t.RunID != "" {
		if err := db.Table("runs").Select("status").Where("id = ?", t.RunID).Scan(&out.RunStatus).Error; err != nil {
			return out, fmt.Errorf("load run status: %w", err)
		}
	}
	out.Mine = t.RequesterID != "" && t.RequesterID == cl.ID
	open := t.Status == tickets.StatusPending || t.Status == tickets.StatusApproved
	out.MayCancel = open && (out.Mine || cl.Admin)
	if t.Status == tickets.StatusPending && !reviewed && !selfReview(t, cl) {
		role, err := s.projectRoleOf(ctx, cl, t.ProjectID)
		if err != nil {
			return out, err
		}
		rules, err := tickets.LoadRules(db, t.ProjectID)
		if err != nil {
			return out, err
		}
		if out.MayApprove, err = s.isApprover(ctx, cl, role, rules); err != nil {
			return out, err
		}
	}
	return out, nil
}

// selfReview reports whether cl asked for ticket t: their own ticket, or one the system
// opened for a push by someone of their user name. Nobody approves their own release.
func selfReview(t tickets.Ticket, cl caller) bool {
	if t.RequesterID != "" {
		return t.RequesterID == cl.ID
	}
	return strings.EqualFold(t.RequestedBy, cl.Username)
}

func (s *Service) getTicket(c *gin.Context) {
	ctx := c.Request.Context()
	t, err := tickets.Get(s.db.WithContext(ctx), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out, err := s.ticketBody(ctx, currentCaller(c), t, true)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// listTickets answers GET /tickets?project_id=&status=&mine=approve|requested&limit=, newest
// first: the tickets of projects the caller may view, or approves through a user group.
// mine=approve keeps the pending tickets the caller may decide now.
func (s *Service) listTickets(c *gin.Context) {
	ctx := c.Request.Context()
	cl := currentCaller(c)
	limit, err := queryInt(c, "limit", 50, 1, maxTicketList)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	q := s.db.WithContext(ctx).Table("release_tickets").Select("release_tickets.*, projects.name AS project_name").
		Joins("JOIN projects ON projects.id = release_tickets.project_id")
	if !cl.Admin {
		q = q.Where(`release_tickets.project_id IN (SELECT p.id FROM projects p JOIN project_group_members m ON m.project_group_id = p.project_group_id
			WHERE m.user_id = ? OR m.user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?))
			OR release_tickets.project_id IN (SELECT r.project_id FROM environment_rules r
			WHERE r.approver_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?))`, cl.ID, cl.ID, cl.ID)
	}
	if pid := c.Query("project_id"); pid != "" {
		q = q.Where("release_tickets.project_id = ?", pid)
	}
	mine := c.Query("mine")
	switch mine {
	case "":
	case "approve":
		q = q.Where("release_tickets.status = ?", tickets.StatusPending).Limit(maxTicketList * 5) // filtered below
	case "requested":
		q = q.Where("release_tickets.requester_id = ?", cl.ID)
	default:
		httpx.Fail(c, s.log, apperr.Invalid("mine must be approve or requested"))
		return
	}
	if st := c.Query("status"); st != "" {
		switch tickets.Status(st) {
		case tickets.StatusPending, tickets.StatusApproved, tickets.StatusStarted, tickets.StatusRejected, tickets.StatusCancelled, tickets.StatusExpired:
			q = q.Where("release_tickets.status = ?", st)
		default:
			httpx.Fail(c, s.log, apperr.Invalid("status must be pending, approved, started, rejected, cancelled or expired"))
			return
		}
	}
	if mine != "approve" {
		q = q.Limit(limit)
	}
	var rows []ticketRow
	if err := q.Order("release_tickets.created_at DESC, release_tickets.id DESC").Scan(&rows).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list tickets: %w", err))
		return
	}
	out := []TicketBody{}
	for _, r := range rows {
		b, err := s.ticketBody(ctx, cl, r.Ticket, false)
		if err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
		if mine == "approve" && !b.MayApprove {
			continue
		}
		out = append(out, b)
		if len(out) == limit {
			break
		}
	}
	c.JSON(http.StatusOK, out)
}

// reviewTicket records an approver's decision on a pending ticket. A rejection ends the
// ticket; the approval that reaches the number needed approves it and, unless it is
// scheduled later, starts its run in the same transaction. The ticket's row is taken first
// (tickets.Lock), so concurrent approvals are counted one after the other.
func (s *Service) reviewTicket(c *gin.Context, decision string) {
	var req reviewRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	if err := checkText("comment", req.Comment, maxTicketComment); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if decision == tickets.DecisionReject && strings.TrimSpace(req.Comment) == "" {
		httpx.Fail(c, s.log, apperr.Invalid("a rejection needs a comment saying why"))
		return
	}
	ctx := c.Request.Context()
	cl := currentCaller(c)
	now := time.Now().UTC()
	id := c.Param("id")
	started := false
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		t, err := tickets.Lock(tx, id, []tickets.Status{tickets.StatusPending}, now)
		if err != nil {
			return err
		}
		if !t.ExpiresAt.After(now) {
			return apperr.Conflict("ticket %s expired at %s", id, t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if selfReview(t, cl) {
			return apperr.Forbidden("you requested this release; someone else must decide it")
		}
		rv := tickets.Review{ID: ids.New(), TicketID: id, ReviewerID: cl.ID, Reviewer: cl.Username, Decision: decision,
			Comment: strings.TrimSpace(req.Comment), CreatedAt: now}
		if err := tx.Create(&rv).Error; err != nil {
			if store.IsUniqueViolation(err) {
				return apperr.Conflict("you already decided ticket %s", id)
			}
			return fmt.Errorf("record review: %w", err)
		}
		if decision == tickets.DecisionReject {
			return tickets.Change(tx, t, []tickets.Status{tickets.StatusPending}, tickets.StatusRejected, cl.Username, rv.Comment,
				map[string]any{"decided_at": now}, now)
		}
		n, err := tickets.Approvals(tx, id)
		if err != nil || n < t.ApprovalsNeeded {
			return err
		}
		if err := tickets.Change(tx, t, []tickets.Status{tickets.StatusPending}, tickets.StatusApproved, cl.Username, rv.Comment,
			map[string]any{"decided_at": now}, now); err != nil {
			return err
		}
		started, err = s.startTicketTx(tx, id, cl.Username, cl.ID, c.RemoteIP(), c.Request.UserAgent(), now)
		return err
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if started {
		s.kick()
	}
	s.answerTicket(c, id)
}

// cancelTicket withdraws a pending or approved ticket that has not started.
func (s *Service) cancelTicket(c *gin.Context) {
	var req reviewRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	if err := checkText("comment", req.Comment, maxTicketComment); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	cl := currentCaller(c)
	now := time.Now().UTC()
	id := c.Param("id")
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		open := []tickets.Status{tickets.StatusPending, tickets.StatusApproved}
		t, err := tickets.Lock(tx, id, open, now)
		if err != nil {
			return err
		}
		return tickets.Change(tx, t, open, tickets.StatusCancelled, cl.Username, strings.TrimSpace(req.Comment),
			map[string]any{"decided_at": now}, now)
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.kick()
	s.answerTicket(c, id)
}

func (s *Service) answerTicket(c *gin.Context, id string) {
	ctx := c.Request.Context()
	t, err := tickets.Get(s.db.WithContext(ctx), id)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out, err := s.ticketBody(ctx, currentCaller(c), t, true)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
