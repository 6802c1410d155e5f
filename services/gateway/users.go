package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/passwd"
	"fabu.dev/libs/store"
)

// User administration, user groups, project groups and their members, server groups and
// their rules, and a project's access settings. Who may call what is in authz.go.
//
// Users are created here, not by the auth service: both share the users table, and
// libs/passwd hashes with the auth service's argon2id parameters and strength rules, so the
// gateway needs no HTTP hop to auth and imports no service.

// accessRoutes mounts the routes of this file on api.
func (s *Service) accessRoutes(api gin.IRoutes) {
	api.GET("/users", s.listUsers)
	api.POST("/users", s.createUser)
	api.PUT("/users/:id", s.updateUser)
	api.GET("/user-groups", s.listUserGroups)
	api.POST("/user-groups", s.createUserGroup)
	api.PUT("/user-groups/:id", s.renameUserGroup)
	api.DELETE("/user-groups/:id", s.deleteUserGroup)
	api.GET("/user-groups/:id/members", s.listUserGroupMembers)
	api.POST("/user-groups/:id/members", s.addUserGroupMember)
	api.DELETE("/user-groups/:id/members/:user_id", s.removeUserGroupMember)
	api.GET("/project-groups", s.listProjectGroups)
	api.POST("/project-groups", s.createProjectGroup)
	api.PUT("/project-groups/:id", s.renameProjectGroup)
	api.DELETE("/project-groups/:id", s.deleteProjectGroup)
	api.GET("/project-groups/:id/members", s.listMembers)
	api.POST("/project-groups/:id/members", s.addMember)
	api.PUT("/project-groups/:id/members/:member_id", s.setMemberRole)
	api.DELETE("/project-groups/:id/members/:member_id", s.removeMember)
	api.GET("/projects/:id/access", s.getAccess)
	api.PUT("/projects/:id/access", s.setAccess)
	s.serverGroupRoutes(api) // users_servers.go
}

// UserBody is a user as the administration API shows it.
type UserBody struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	Groups    []string  `json:"groups"`
	CreatedAt time.Time `json:"created_at"`
}

type userRow struct {
	ID         string
	Username   string
	Role       string
	DisabledAt *time.Time
	CreatedAt  time.Time
}

func (s *Service) loadUsers(ctx context.Context, where string, args ...any) ([]UserBody, error) {
	var rows []userRow
	q := s.db.WithContext(ctx).Table("users").Select("id, username, role, disabled_at, created_at").Order("username")
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var gm []struct{ UserID, Name string }
	if err := s.db.WithContext(ctx).Table("user_group_members m").Select("m.user_id, g.name").
		Joins("JOIN user_groups g ON g.id = m.group_id").Order("g.name").Scan(&gm).Error; err != nil {
		return nil, fmt.Errorf("list user groups: %w", err)
	}
	groups := map[string][]string{}
	for _, g := range gm {
		groups[g.UserID] = append(groups[g.UserID], g.Name)
	}
	out := make([]UserBody, len(rows))
	for i, r := range rows {
		out[i] = UserBody{ID: r.ID, Username: r.Username, Role: r.Role, Disabled: r.DisabledAt != nil,
			Groups: groups[r.ID], CreatedAt: r.CreatedAt}
		if out[i].Groups == nil {
			out[i].Groups = []string{}
		}
	}
	return out, nil
}

func (s *Service) listUsers(c *gin.Context) {
	out, err := s.loadUsers(c.Request.Context(), "")
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

type createUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func validSystemRole(role string) error {
	if role != SystemAdmin && role != SystemUser {
		return apperr.Invalid("role %q must be admin or user", role)
	}
	return nil
}

func (s *Service) createUser(c *gin.Context) {
	var req createUserRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if req.Role == "" {
		req.Role = SystemUser
	}
	if err := errors.Join(validName("user", req.Username), validSystemRole(req.Role)); err != nil {
		httpx.Fail(c, s.log, apperr.Invalid("%v", err))
		return
	}
	if err := passwd.CheckStrength(req.Password); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	hash, err := passwd.Hash(req.Password)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	id := ids.New()
	err = s.db.WithContext(c.Request.Context()).Exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		id, req.Username, hash, req.Role, time.Now().UTC()).Error
	if store.IsUniqueViolation(err) {
		httpx.Fail(c, s.log, apperr.Conflict("user %q exists", req.Username))
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("create user: %w", err))
		return
	}
	s.respondUser(c, http.StatusCreated, id)
}

func (s *Service) respondUser(c *gin.Context, status int, id string) {
	out, err := s.loadUsers(c.Request.Context(), "id = ?", id)
	if err == nil && len(out) == 0 {
		err = apperr.NotFound("user %s not found", id)
	}
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(status, out[0])
}

// updateUserRequest changes a user's system role or disables them; absent fields stay.
type updateUserRequest struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

// updateUser sets a user's system role or disables or enables them. Disabling revokes the
// user's logins; the gateway refuses a disabled user's every credential (authorize). The
// last enabled administrator can be neither demoted nor disabled, so fabu keeps one.
func (s *Service) updateUser(c *gin.Context) {
	var req updateUserRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if req.Role != nil {
		if err := validSystemRole(*req.Role); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	id := c.Param("id")
	now := time.Now().UTC()
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var u userRow
		if err := tx.Table("users").Select("id, username, role, disabled_at").Where("id = ?", id).Take(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.NotFound("user %s not found", id)
			}
			return fmt.Errorf("load user %s: %w", id, err)
		}
		updates := map[string]any{}
		if req.Role != nil {
			updates["role"] = *req.Role
		}
		if req.Disabled != nil {
			if *req.Disabled && u.DisabledAt == nil {
				updates["disabled_at"] = now
			} else if !*req.Disabled {
				updates["disabled_at"] = nil
			}
		}
		losesAdmin := u.Role == SystemAdmin && u.DisabledAt == nil &&
			((req.Role != nil && *req.Role != SystemAdmin) || (req.Disabled != nil && *req.Disabled))
		if losesAdmin {
			var n int64
			if err := tx.Table("users").Where("role = ? AND disabled_at IS NULL AND id <> ?", SystemAdmin, id).Count(&n).Error; err != nil {
				return fmt.Errorf("count administrators: %w", err)
			}
			if n == 0 {
				return apperr.Conflict("%s is the last administrator; make another user admin first", u.Username)
			}
		}
		if len(updates) == 0 {
			return nil
		}
		if err := tx.Table("users").Where("id = ?", id).Updates(updates).Error; err != nil {
			return fmt.Errorf("update user %s: %w", id, err)
		}
		if req.Disabled != nil && *req.Disabled {
			if err := tx.Exec(`UPDATE auth_sessions SET revoked_at = ?, revoke_reason = 'user disabled' WHERE user_id = ? AND revoked_at IS NULL`, now, id).Error; err != nil {
				return fmt.Errorf("revoke logins of %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.respondUser(c, http.StatusOK, id)
}

// GroupBody is a user group, project group or server group.
type GroupBody struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Role is the caller's role in a project group (owner for administrators).
	Role string `json:"role,omitempty"`
}

type nameRequest struct {
	Name string `json:"name"`
}

func (s *Service) listGroups(c *gin.Context, table string, q func(*gorm.DB) *gorm.DB) {
	var out []GroupBody
	tx := s.db.WithContext(c.Request.Context()).Table(table).Select("id, name").Order("name")
	if q != nil {
		tx = q(tx)
	}
	if err := tx.Scan(&out).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list %s: %w", table, err))
		return
	}
	if out == nil {
		out = []GroupBody{}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) createGroup(c *gin.Context, table, kind string) {
	var req nameRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := validName(kind, req.Name); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	g := GroupBody{ID: ids.New(), Name: req.Name}
	err := s.db.WithContext(c.Request.Context()).Exec("INSERT INTO "+table+" (id, name, created_at) VALUES (?, ?, ?)", g.ID, g.Name, time.Now().UTC()).Error
	if store.IsUniqueViolation(err) {
		httpx.Fail(c, s.log, apperr.Conflict("%s %q exists", kind, req.Name))
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("create %s: %w", kind, err))
		return
	}
	c.JSON(http.StatusCreated, g)
}

func (s *Service) renameGroup(c *gin.Context, table, kind string) {
	var req nameRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if err := validName(kind, req.Name); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	res := s.db.WithContext(c.Request.Context()).Table(table).Where("id = ?", c.Param("id")).Update("name", req.Name)
	switch {
	case store.IsUniqueViolation(res.Error):
		httpx.Fail(c, s.log, apperr.Conflict("%s %q exists", kind, req.Name))
	case res.Error != nil:
		httpx.Fail(c, s.log, fmt.Errorf("rename %s: %w", kind, res.Error))
	case res.RowsAffected == 0:
		httpx.Fail(c, s.log, apperr.NotFound("%s %s not found", kind, c.Param("id")))
	default:
		c.JSON(http.StatusOK, GroupBody{ID: c.Param("id"), Name: req.Name})
	}
}

func (s *Service) deleteGroup(c *gin.Context, table, kind string) {
	res := s.db.WithContext(c.Request.Context()).Exec("DELETE FROM "+table+" WHERE id = ?", c.Param("id"))
	switch {
	case res.Error != nil:
		httpx.Fail(c, s.log, fmt.Errorf("delete %s: %w", kind, res.Error))
	case res.RowsAffected == 0:
		httpx.Fail(c, s.log, apperr.NotFound("%s %s not found", kind, c.Param("id")))
	default:
		c.Status(http.StatusNoContent)
	}
}

func (s *Service) listUserGroups(c *gin.Context)  { s.listGroups(c, "user_groups", nil) }
func (s *Service) createUserGroup(c *gin.Context) { s.createGroup(c, "user_groups", "user group") }
func (s *Service) renameUserGroup(c *gin.Context) { s.renameGroup(c, "user_groups", "user group") }
func (s *Service) deleteUserGroup(c *gin.Context) { s.deleteGroup(c, "user_groups", "user group") }

func (s *Service) listUserGroupMembers(c *gin.Context) {
	out, err := s.loadUsers(c.Request.Context(), "id IN (SELECT user_id FROM user_group_members WHERE group_id = ?)", c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

type usernameRequest struct {
	Username string `json:"username"`
}

func (s *Service) userIDByName(ctx context.Context, name string) (string, error) {
	var id string
	if err := s.db.WithContext(ctx).Table("users").Select("id").Where("username = ?", name).Scan(&id).Error; err != nil {
		return "", fmt.Errorf("look up user %q: %w", name, err)
	}
	if id == "" {
		return "", apperr.Invalid("there is no user %q", name)
	}
	return id, nil
}

func (s *Service) groupExists(ctx context.Context, table, id string) error {
	var n int64
	if err := s.db.WithContext(ctx).Table(table).Where("id = ?", id).Count(&n).Error; err != nil {
		return fmt.Errorf("load %s %s: %w", table, id, err)
	}
	if n == 0 {
		return apperr.NotFound("group %s not found", id)
	}
	return nil
}

func (s *Service) addUserGroupMember(c *gin.Context) {
	var req usernameRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.groupExists(ctx, "user_groups", c.Param("id")); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	uid, err := s.userIDByName(ctx, req.Username)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	err = s.db.WithContext(ctx).Exec(`INSERT INTO user_group_members (group_id, user_id) VALUES (?, ?)`, c.Param("id"), uid).Error
	if err != nil && !store.IsUniqueViolation(err) {
		httpx.Fail(c, s.log, fmt.Errorf("add %s to user group: %w", req.Username, err))
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Service) removeUserGroupMember(c *gin.Context) {
	err := s.db.WithContext(c.Request.Context()).Exec(`DELETE FROM user_group_members WHERE group_id = ? AND user_id = ?`,
		c.Param("id"), c.Param("user_id")).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("remove user group member: %w", err))
		return
	}
	c.Status(http.StatusNoContent)
}
