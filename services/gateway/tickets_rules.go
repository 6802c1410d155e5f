package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/tickets"
)

// Environment rules: a project's approval policy and deploy windows, beside its
// deploy_role (users_groups.go). GET /projects/:id/approval shows them with what they mean
// for the caller; PUT changes them (owners, like the rest of a project's access).

// ApprovalBody is a project's environment rules as the API shows them.
type ApprovalBody struct {
	Approval        string           `json:"approval"`      // none | required | required_below_role
	ApprovalRole    string           `json:"approval_role"` // required_below_role: the least role that deploys without a ticket
	ApproverRole    string           `json:"approver_role"` // the least project role that approves; "" for none
	ApproverGroup   string           `json:"approver_group"`
	ApprovalsNeeded int              `json:"approvals_needed"`
	DeployWindows   []tickets.Window `json:"deploy_windows"`
	TimeZone        string           `json:"time_zone"`
	TicketTTLHours  int              `json:"ticket_ttl_hours"`
	LinkConfirm     bool             `json:"link_confirm"` // the deploy link asks before it starts a run
	UpdatedBy       string           `json:"updated_by,omitempty"`
	// For the caller.
	Role         string `json:"role"`          // the caller's role on the project
	TicketNeeded bool   `json:"ticket_needed"` // a deploy by the caller now needs an approved ticket
	Reason       string `json:"reason,omitempty"`
	MayRequest   bool   `json:"may_request"` // the caller may open a ticket
	MayApprove   bool   `json:"may_approve"` // the caller is an approver
	InWindow     bool   `json:"in_window"`
}

// approvalRequest changes a project's rules; absent fields stay.
type approvalRequest struct {
	Approval        *string           `json:"approval"`
	ApprovalRole    *string           `json:"approval_role"`
	ApproverRole    *string           `json:"approver_role"`
	ApproverGroup   *string           `json:"approver_group"` // a user group's name; "" for none
	ApprovalsNeeded *int              `json:"approvals_needed"`
	DeployWindows   *[]tickets.Window `json:"deploy_windows"`
	TimeZone        *string           `json:"time_zone"`
	TicketTTLHours  *int              `json:"ticket_ttl_hours"`
	LinkConfirm     *bool             `json:"link_confirm"`
}

func (s *Service) approvalRoutes(api gin.IRoutes) {
	api.GET("/projects/:id/approval", s.getApproval)
	api.PUT("/projects/:id/approval", s.setApproval)
}

func (s *Service) getApproval(c *gin.Context) {
	ctx := c.Request.Context()
	cl := currentCaller(c)
	pid := c.Param("id")
	r, err := tickets.LoadRules(s.db.WithContext(ctx), pid)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out, err := s.approvalBody(ctx, cl, pid, r)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) approvalBody(ctx context.Context, cl caller, pid string, r tickets.Rules) (ApprovalBody, error) {
	out := ApprovalBody{Approval: r.Approval, ApprovalRole: r.ApprovalRole, ApproverRole: r.ApproverRole,
		ApprovalsNeeded: r.ApprovalsNeeded, TimeZone: r.TimeZone, TicketTTLHours: r.TicketTTLHours, UpdatedBy: r.UpdatedBy,
		LinkConfirm: r.LinkConfirm, DeployWindows: []tickets.Window{}}
	if ws, err := tickets.ParseWindows(r.DeployWindows); err == nil && ws != nil {
		out.DeployWindows = ws
	}
	if r.ApproverGroupID != nil {
		if err := s.db.WithContext(ctx).Table("user_groups").Select("name").Where("id = ?", *r.ApproverGroupID).Scan(&out.ApproverGroup).Error; err != nil {
			return out, fmt.Errorf("load approver group: %w", err)
		}
	}
	pa, err := s.loadAccess(ctx, pid)
	if err != nil {
		return out, err
	}
	gid := ""
	if pa.ProjectGroupID != nil {
		gid = *pa.ProjectGroupID
	}
	if out.Role, err = s.groupRole(ctx, cl, gid); err != nil {
		return out, err
	}
	if out.TicketNeeded, out.Reason, err = s.ticketNeeded(ctx, cl, pid); err != nil {
		return out, err
	}
	if out.InWindow, err = r.InWindow(time.Now()); err != nil {
		return out, err
	}
	out.MayRequest = roleRank(out.Role) >= roleRank(RoleDeveloper)
	out.MayApprove, err = s.isApprover(ctx, cl, out.Role, r)
	return out, err
}

// setApproval changes a project's environment rules. Every value is checked before any is
// stored; the rules apply to deploys and tickets opened from then on (an open ticket keeps
// the number of approvals it was opened with).
func (s *Service) setApproval(c *gin.Context) {
	var req approvalRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	pid := c.Param("id")
	cl := currentCaller(c)
	var saved tickets.Rules
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := tickets.LoadRules(tx, pid)
		if err != nil {
			return err
		}
		if err := s.applyApproval(ctx, tx, &r, req); err != nil {
			return err
		}
		r.UpdatedBy, r.UpdatedAt = cl.Username, time.Now().UTC()
		saved = r
		return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&r).Error
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out, err := s.approvalBody(ctx, cl, pid, saved)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) applyApproval(ctx context.Context, tx *gorm.DB, r *tickets.Rules, req approvalRequest) error {
	if req.Approval != nil {
		switch *req.Approval {
		case tickets.ApprovalNone, tickets.ApprovalRequired, tickets.ApprovalBelowRole:
			r.Approval = *req.Approval
		default:
			return apperr.Invalid("approval must be none, required or required_below_role")
		}
	}
	if req.ApprovalRole != nil {
		if roleRank(*req.ApprovalRole) < roleRank(RoleDeveloper) {
			return apperr.Invalid("approval_role must be developer, maintainer or owner")
		}
		r.ApprovalRole = *req.ApprovalRole
	}
	if req.ApproverRole != nil {
		if *req.ApproverRole != "" && roleRank(*req.ApproverRole) < roleRank(RoleDeveloper) {
			return apperr.Invalid("approver_role must be developer, maintainer, owner or empty (only the approver group approves)")
		}
		r.ApproverRole = *req.ApproverRole
	}
	if req.ApproverGroup != nil {
		r.ApproverGroupID = nil
		if name := strings.TrimSpace(*req.ApproverGroup); name != "" {
			var id string
			if err := tx.WithContext(ctx).Table("user_groups").Select("id").Where("name = ?", name).Scan(&id).Error; err != nil {
				return fmt.Errorf("look up user group: %w", err)
			}
			if id == "" {
				return apperr.Invalid("approver_group: no user group %q", name)
			}
			r.ApproverGroupID = &id
		}
	}
	if r.ApproverRole == "" && r.ApproverGroupID == nil {
		return apperr.Invalid("give an approver_role, an approver_group or both: someone must be able to approve")
	}
	if req.ApprovalsNeeded != nil {
		if *req.ApprovalsNeeded < 1 || *req.ApprovalsNeeded > 10 {
			return apperr.Invalid("approvals_needed must be 1-10")
		}
		r.ApprovalsNeeded = *req.ApprovalsNeeded
	}
	if req.TicketTTLHours != nil {
		if *req.TicketTTLHours < 1 || *req.TicketTTLHours > 8784 {
			return apperr.Invalid("ticket_ttl_hours must be 1-8784 (a year)")
		}
		r.TicketTTLHours = *req.TicketTTLHours
	}
	if req.LinkConfirm != nil {
		r.LinkConfirm = *req.LinkConfirm
	}
	if req.TimeZone != nil {
		r.TimeZone = strings.TrimSpace(*req.TimeZone)
	}
	ws, err := tickets.ParseWindows(r.DeployWindows)
	if err != nil {
		return err
	}
	if req.DeployWindows != nil {
		ws = *req.DeployWindows
	}
	if _, err := tickets.CheckWindows(ws, r.TimeZone); err != nil {
		return err
	}
	r.DeployWindows = ""
	if len(ws) > 0 {
		b, err := json.Marshal(ws)
		if err != nil {
			return fmt.Errorf("encode deploy windows: %w", err)
		}
		r.DeployWindows = string(b)
	}
	return nil
}

// ticketNeeded reports whether a deploy of project pid by cl needs an approved ticket now,
// and why: the policy requires one for everyone, or for the caller's role, or the time is
// outside the project's deploy windows. Administrators are held to the policy like owners.
func (s *Service) ticketNeeded(ctx context.Context, cl caller, pid string) (bool, string, error) {
	r, err := tickets.LoadRules(s.db.WithContext(ctx), pid)
	if err != nil {
		return false, "", err
	}
	switch r.Approval {
	case tickets.ApprovalRequired:
		return true, "every deploy of this project needs an approved release ticket", nil
	case tickets.ApprovalBelowRole:
		pa, err := s.loadAccess(ctx, pid)
		if err != nil {
			return false, "", err
		}
		gid := ""
		if pa.ProjectGroupID != nil {
			gid = *pa.ProjectGroupID
		}
		role, err := s.groupRole(ctx, cl, gid)
		if err != nil {
			return false, "", err
		}
		if roleRank(role) < roleRank(r.ApprovalRole) {
			return true, fmt.Sprintf("below the %s role a deploy of this project needs an approved release ticket", r.ApprovalRole), nil
		}
	}
	in, err := r.InWindow(time.Now())
	if err != nil {
		return false, "", err
	}
	if !in {
		return true, "outside the project's deploy windows a deploy needs an approved release ticket", nil
	}
	return false, "", nil
}

// needNoTicket refuses a direct deploy of project pid by cl that needs a ticket, saying how
// to ask for one. (A 403 rather than opening a ticket on the caller's behalf: a ticket wants
// a title and a description for its approvers, and a deploy button that silently files
// requests would surprise.)
func (s *Service) needNoTicket(ctx context.Context, cl caller, pid string) error {
	need, why, err := s.ticketNeeded(ctx, cl, pid)
	if err != nil {
		return err
	}
	if need {
		return apperr.Forbidden("%s: request a release (POST /api/v1/projects/%s/tickets); it deploys once approved", why, pid)
	}
	return nil
}

// isApprover reports whether cl, holding role on the project, approves under rules r:
// an administrator, a holder of the approver role or above, or a member of the approver group.
func (s *Service) isApprover(ctx context.Context, cl caller, role string, r tickets.Rules) (bool, error) {
	if cl.Admin {
		return true, nil
	}
	if r.ApproverRole != "" && role != "" && roleRank(role) >= roleRank(r.ApproverRole) {
		return true, nil
	}
	if r.ApproverGroupID == nil {
		return false, nil
	}
	var n int64
	err := s.db.WithContext(ctx).Table("user_group_members").Where("group_id = ? AND user_id = ?", *r.ApproverGroupID, cl.ID).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("check approver group: %w", err)
	}
	return n > 0, nil
}

// projectRoleOf is cl's role on project pid ("" for none); a missing project is not found.
func (s *Service) projectRoleOf(ctx context.Context, cl caller, pid string) (string, error) {
	pa, err := s.loadAccess(ctx, pid)
	if err != nil {
		return "", err
	}
	gid := ""
	if pa.ProjectGroupID != nil {
		gid = *pa.ProjectGroupID
	}
	return s.groupRole(ctx, cl, gid)
}

// errTicketHidden is what a caller who may not see a ticket learns of it.
func errTicketHidden(id string) error { return apperr.NotFound("ticket %s not found", id) }

// ticketRule checks the authz rules of ticket routes: onTicket (see it: a role on its
// project, or an approver of it), reviewTicket (approve or reject it: an approver) and
// cancelTicket (its requester, or an administrator).
func (s *Service) ticketRule(ctx context.Context, cl caller, kind ruleKind, id string) error {
	t, err := tickets.Get(s.db.WithContext(ctx), id)
	if err != nil {
		return err
	}
	role, err := s.projectRoleOf(ctx, cl, t.ProjectID)
	if err != nil {
		return notFoundAs(err, errTicketHidden(id))
	}
	r, err := tickets.LoadRules(s.db.WithContext(ctx), t.ProjectID)
	if err != nil {
		return err
	}
	approver, err := s.isApprover(ctx, cl, role, r)
	if err != nil {
		return err
	}
	if role == "" && !approver {
		return errTicketHidden(id)
	}
	switch kind {
	case reviewTicket:
		if !approver {
			return apperr.Forbidden("only approvers of project %s (%s) may decide its tickets", t.ProjectID, approverText(r))
		}
	case cancelTicket:
		if !cl.Admin && (t.RequesterID == "" || t.RequesterID != cl.ID) {
			return apperr.Forbidden("only the requester may cancel a ticket; approvers reject it")
		}
	}
	return nil
}

func approverText(r tickets.Rules) string {
	var parts []string
	if r.ApproverRole != "" {
		parts = append(parts, r.ApproverRole+"s and above")
	}
	if r.ApproverGroupID != nil {
		parts = append(parts, "its approver group")
	}
	return strings.Join(parts, " or ")
}
