package gateway

import (
	"context"

	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/store"
)

// listProjectGroups lists the project groups the caller holds a role in (all of them for
// administrators), with that role.
func (s *Service) listProjectGroups(c *gin.Context) {
	cl := currentCaller(c)
	ctx := c.Request.Context()
	var gs []GroupBody
	if err := s.db.WithContext(ctx).Table("project_groups").Select("id, name").Order("name").Scan(&gs).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list project groups: %w", err))
		return
	}
	out := []GroupBody{}
	for _, g := range gs {
		role, err := s.groupRole(ctx, cl, g.ID)
		if err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
		if role != "" {
			g.Role = role
			out = append(out, g)
		}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) createProjectGroup(c *gin.Context) {
	s.createGroup(c, "project_groups", "project group")
}
func (s *Service) renameProjectGroup(c *gin.Context) {
	s.renameGroup(c, "project_groups", "project group")
}

// deleteProjectGroup deletes an empty group other than the default one; projects must be
// moved out first, so no project silently becomes admin-only.
func (s *Service) deleteProjectGroup(c *gin.Context) {
	id := c.Param("id")
	if id == DefaultProjectGroup {
		httpx.Fail(c, s.log, apperr.Conflict("the default project group cannot be deleted"))
		return
	}
	var n int64
	if err := s.db.WithContext(c.Request.Context()).Table("projects").Where("project_group_id = ?", id).Count(&n).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("count projects of group %s: %w", id, err))
		return
	}
	if n > 0 {
		httpx.Fail(c, s.log, apperr.Conflict("project group %s still has %d projects; move them first", id, n))
		return
	}
	s.deleteGroup(c, "project_groups", "project group")
}

// MemberBody is a member of a project group: a user or a user group.
type MemberBody struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id,omitempty"`
	Username  string `json:"username,omitempty"`
	UserGroup string `json:"user_group,omitempty"` // the user group's name
	GroupID   string `json:"user_group_id,omitempty"`
	Role      string `json:"role"`
}

func (s *Service) loadMembers(ctx context.Context, gid string) ([]MemberBody, error) {
	var rows []struct {
		ID, Role                         string
		UserID, Username, GroupID, GName *string
	}
	err := s.db.WithContext(ctx).Table("project_group_members m").
		Select("m.id, m.role, m.user_id, u.username, m.user_group_id AS group_id, g.name AS g_name").
		Joins("LEFT JOIN users u ON u.id = m.user_id").Joins("LEFT JOIN user_groups g ON g.id = m.user_group_id").
		Where("m.project_group_id = ?", gid).Order("u.username, g.name").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", gid, err)
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out := make([]MemberBody, len(rows))
	for i, r := range rows {
		out[i] = MemberBody{ID: r.ID, Role: r.Role, UserID: deref(r.UserID), Username: deref(r.Username),
			GroupID: deref(r.GroupID), UserGroup: deref(r.GName)}
	}
	return out, nil
}

func (s *Service) listMembers(c *gin.Context) {
	out, err := s.loadMembers(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// memberRequest adds a member: exactly one of username and user_group (a name).
type memberRequest struct {
	Username  string `json:"username"`
	UserGroup string `json:"user_group"`
	Role      string `json:"role"`
}

func validProjectRole(role string) error {
	if roleRank(role) == 0 {
		return apperr.Invalid("role %q must be owner, maintainer, developer or viewer", role)
	}
	return nil
}

// addMember gives a user or user group a role in the group (owners and administrators, by
// the route's rule); adding an existing member is a conflict, a role change is a PUT.
func (s *Service) addMember(c *gin.Context) {
	var req memberRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := validProjectRole(req.Role); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	userID, groupID, err := s.memberRef(ctx, req.Username, req.UserGroup)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	mid := ids.New()
	err = s.db.WithContext(ctx).Exec(`INSERT INTO project_group_members (id, project_group_id, user_id, user_group_id, role, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		mid, c.Param("id"), userID, groupID, req.Role, time.Now().UTC()).Error
	if store.IsUniqueViolation(err) {
		httpx.Fail(c, s.log, apperr.Conflict("already a member; change the role instead"))
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("add member: %w", err))
		return
	}
	s.respondMember(c, http.StatusCreated, mid)
}

func (s *Service) respondMember(c *gin.Context, status int, mid string) {
	ms, err := s.loadMembers(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	for _, m := range ms {
		if m.ID == mid {
			c.JSON(status, m)
			return
		}
	}
	httpx.Fail(c, s.log, apperr.NotFound("member %s not found", mid))
}

type roleRequest struct {
	Role string `json:"role"`
}

func (s *Service) setMemberRole(c *gin.Context) {
	var req roleRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := validProjectRole(req.Role); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		res := tx.Table("project_group_members").Where("id = ? AND project_group_id = ?", c.Param("member_id"), c.Param("id")).Update("role", req.Role)
		if res.Error != nil {
			return fmt.Errorf("set member role: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return apperr.NotFound("member %s not found", c.Param("member_id"))
		}
		return s.keepAnOwner(c, tx)
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.respondMember(c, http.StatusOK, c.Param("member_id"))
}

func (s *Service) removeMember(c *gin.Context) {
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM project_group_members WHERE id = ? AND project_group_id = ?`, c.Param("member_id"), c.Param("id"))
		if res.Error != nil {
			return fmt.Errorf("remove member: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return apperr.NotFound("member %s not found", c.Param("member_id"))
		}
		return s.keepAnOwner(c, tx)
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// keepAnOwner refuses, for owners who are not administrators, a change that leaves the
// group without an owner: they would lock themselves and everyone else out of managing it.
func (s *Service) keepAnOwner(c *gin.Context, tx *gorm.DB) error {
	if currentCaller(c).Admin {
		return nil
	}
	var n int64
	if err := tx.Table("project_group_members").Where("project_group_id = ? AND role = ?", c.Param("id"), RoleOwner).Count(&n).Error; err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if n == 0 {
		return apperr.Conflict("a project group needs an owner; make someone else owner first")
	}
	return nil
}

// AccessBody is a project's access settings and what the caller may do with it.
type AccessBody struct {
	ProjectGroupID   string `json:"project_group_id"`
	ProjectGroupName string `json:"project_group"`
	DeployRole       string `json:"deploy_role"`
	Role             string `json:"role"`       // the caller's role on the project
	MayDeploy        bool   `json:"may_deploy"` // deploy_role and server-group rules allow the caller
}

func (s *Service) getAccess(c *gin.Context) {
	ctx := c.Request.Context()
	cl := currentCaller(c)
	pa, err := s.loadAccess(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out := AccessBody{DeployRole: pa.DeployRole}
	if pa.ProjectGroupID != nil {
		out.ProjectGroupID = *pa.ProjectGroupID
		if err := s.db.WithContext(ctx).Table("project_groups").Select("name").Where("id = ?", out.ProjectGroupID).Scan(&out.ProjectGroupName).Error; err != nil {
			httpx.Fail(c, s.log, fmt.Errorf("load project group: %w", err))
			return
		}
	}
	if out.Role, err = s.groupRole(ctx, cl, out.ProjectGroupID); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	err = s.mayDeploy(ctx, cl, pa.ID)
	if err != nil && apperr.CodeOf(err) != apperr.CodeForbidden {
		httpx.Fail(c, s.log, err)
		return
	}
	out.MayDeploy = err == nil
	c.JSON(http.StatusOK, out)
}

// accessRequest moves a project to another group or changes who may deploy it; absent
// fields stay.
type accessRequest struct {
	ProjectGroupID *string `json:"project_group_id"`
	DeployRole     *string `json:"deploy_role"`
}

// setAccess changes a project's group and deploy role. The route needs the owner role on
// the project; moving it also needs the owner role in the target group, so nobody moves a
// project into a group they do not own, or out of one into a group where they have more
// power.
func (s *Service) setAccess(c *gin.Context) {
	var req accessRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	updates := map[string]any{}
	if req.DeployRole != nil {
		if *req.DeployRole == RoleViewer {
			httpx.Fail(c, s.log, apperr.Invalid("deploy_role must be developer, maintainer or owner"))
			return
		}
		if err := validProjectRole(*req.DeployRole); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
		updates["deploy_role"] = *req.DeployRole
	}
	if req.ProjectGroupID != nil {
		if err := s.needGroupRole(ctx, currentCaller(c), *req.ProjectGroupID, RoleOwner); err != nil {
			if code := apperr.CodeOf(err); code != apperr.CodeNotFound && code != apperr.CodeForbidden {
				httpx.Fail(c, s.log, err)
				return
			}
			// An unknown group and one the caller does not own read alike.
			httpx.Fail(c, s.log, apperr.Forbidden("moving a project needs the owner role in the target group"))
			return
		}
		updates["project_group_id"] = *req.ProjectGroupID
	}
	if len(updates) > 0 {
		if err := s.db.WithContext(ctx).Table("projects").Where("id = ?", c.Param("id")).Updates(updates).Error; err != nil {
			httpx.Fail(c, s.log, fmt.Errorf("set project access: %w", err))
			return
		}
	}
	s.getAccess(c)
}

// memberRef resolves who a membership or rule is for: exactly one of a user name and a user
// group name. It returns the user's id or the group's id, the other nil, as column values.
func (s *Service) memberRef(ctx context.Context, username, userGroup string) (userID, groupID any, err error) {
	if (username == "") == (userGroup == "") {
		return nil, nil, apperr.Invalid("give exactly one of username and user_group")
	}
	if username != "" {
		id, err := s.userIDByName(ctx, username)
		return id, nil, err
	}
	var id string
	if err := s.db.WithContext(ctx).Table("user_groups").Select("id").Where("name = ?", userGroup).Scan(&id).Error; err != nil {
		return nil, nil, fmt.Errorf("look up user group %q: %w", userGroup, err)
	}
	if id == "" {
		return nil, nil, apperr.Invalid("there is no user group %q", userGroup)
	}
	return nil, id, nil
}
