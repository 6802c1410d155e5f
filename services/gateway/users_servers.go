package gateway

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// Server groups restrict servers: a server in a group takes deploys (and, once fabu has a
// web terminal, terminal sessions) only from users a rule of the group allows.

func (s *Service) serverGroupRoutes(api gin.IRoutes) {
	api.GET("/server-groups", s.listServerGroups)
	api.POST("/server-groups", func(c *gin.Context) { s.createGroup(c, "server_groups", "server group") })
	api.PUT("/server-groups/:id", func(c *gin.Context) { s.renameGroup(c, "server_groups", "server group") })
	api.DELETE("/server-groups/:id", func(c *gin.Context) { s.deleteGroup(c, "server_groups", "server group") })
	api.PUT("/server-groups/:id/servers", s.setGroupServers)
	api.GET("/server-groups/:id/rules", s.listRules)
	api.POST("/server-groups/:id/rules", s.addRule)
	api.DELETE("/server-groups/:id/rules/:rule_id", s.removeRule)
}

// ServerGroupBody is a server group with its servers' ids.
type ServerGroupBody struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	ServerIDs []string `json:"server_ids"`
}

func (s *Service) listServerGroups(c *gin.Context) {
	tx := s.db.WithContext(c.Request.Context())
	var gs []GroupBody
	if err := tx.Table("server_groups").Select("id, name").Order("name").Scan(&gs).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list server groups: %w", err))
		return
	}
	var members []struct{ ID, ServerGroupID string }
	if err := tx.Table("servers").Select("id, server_group_id").Where("server_group_id IS NOT NULL").Order("name").Scan(&members).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list grouped servers: %w", err))
		return
	}
	byGroup := map[string][]string{}
	for _, m := range members {
		byGroup[m.ServerGroupID] = append(byGroup[m.ServerGroupID], m.ID)
	}
	out := make([]ServerGroupBody, len(gs))
	for i, g := range gs {
		out[i] = ServerGroupBody{ID: g.ID, Name: g.Name, ServerIDs: byGroup[g.ID]}
		if out[i].ServerIDs == nil {
			out[i].ServerIDs = []string{}
		}
	}
	c.JSON(http.StatusOK, out)
}

type groupServersRequest struct {
	ServerIDs []string `json:"server_ids"`
}

// setGroupServers makes server_ids exactly the group's servers; a server leaves any other
// group it was in.
func (s *Service) setGroupServers(c *gin.Context) {
	var req groupServersRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	gid := c.Param("id")
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var n int64
		if err := tx.Table("server_groups").Where("id = ?", gid).Count(&n).Error; err != nil {
			return fmt.Errorf("load server group %s: %w", gid, err)
		}
		if n == 0 {
			return apperr.NotFound("server group %s not found", gid)
		}
		if len(req.ServerIDs) > 0 {
			var n int64
			if err := tx.Table("servers").Where("id IN ?", req.ServerIDs).Count(&n).Error; err != nil {
				return fmt.Errorf("check servers: %w", err)
			}
			if int(n) != len(req.ServerIDs) {
				return apperr.Invalid("server_ids name unknown or repeated servers")
			}
		}
		if err := tx.Table("servers").Where("server_group_id = ?", gid).Update("server_group_id", nil).Error; err != nil {
			return fmt.Errorf("clear server group: %w", err)
		}
		if len(req.ServerIDs) > 0 {
			if err := tx.Table("servers").Where("id IN ?", req.ServerIDs).Update("server_group_id", gid).Error; err != nil {
				return fmt.Errorf("set server group: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// RuleBody is a rule of a server group: a user or user group (exactly one) and what they
// may do on its servers.
type RuleBody struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id,omitempty"`
	Username    string `json:"username,omitempty"`
	UserGroupID string `json:"user_group_id,omitempty"`
	UserGroup   string `json:"user_group,omitempty"`
	MayDeploy   bool   `json:"may_deploy"`
	MayTerminal bool   `json:"may_terminal"`
}

func (s *Service) listRules(c *gin.Context) {
	var rows []struct {
		ID                                       string
		UserID, Username, UserGroupID, GroupName *string
		MayDeploy, MayTerminal                   bool
	}
	err := s.db.WithContext(c.Request.Context()).Table("server_group_rules r").
		Select("r.id, r.user_id, u.username, r.user_group_id, g.name AS group_name, r.may_deploy, r.may_terminal").
		Joins("LEFT JOIN users u ON u.id = r.user_id").Joins("LEFT JOIN user_groups g ON g.id = r.user_group_id").
		Where("r.server_group_id = ?", c.Param("id")).Order("u.username, g.name").Scan(&rows).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list rules: %w", err))
		return
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out := make([]RuleBody, len(rows))
	for i, r := range rows {
		out[i] = RuleBody{ID: r.ID, UserID: deref(r.UserID), Username: deref(r.Username), UserGroupID: deref(r.UserGroupID),
			UserGroup: deref(r.GroupName), MayDeploy: r.MayDeploy, MayTerminal: r.MayTerminal}
	}
	c.JSON(http.StatusOK, out)
}

type ruleRequest struct {
	Username    string `json:"username"`
	UserGroup   string `json:"user_group"`
	MayDeploy   bool   `json:"may_deploy"`
	MayTerminal bool   `json:"may_terminal"`
}

func (s *Service) addRule(c *gin.Context) {
	var req ruleRequest
	if err := httpx.Bind(c, &req); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	ctx := c.Request.Context()
	if err := s.groupExists(ctx, "server_groups", c.Param("id")); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	userID, groupID, err := s.memberRef(ctx, req.Username, req.UserGroup)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	id := ids.New()
	err = s.db.WithContext(ctx).Exec(`INSERT INTO server_group_rules (id, server_group_id, user_id, user_group_id, may_deploy, may_terminal) VALUES (?, ?, ?, ?, ?, ?)`,
		id, c.Param("id"), userID, groupID, req.MayDeploy, req.MayTerminal).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("add rule: %w", err))
		return
	}
	c.JSON(http.StatusCreated, RuleBody{ID: id, Username: req.Username, UserGroup: req.UserGroup, MayDeploy: req.MayDeploy, MayTerminal: req.MayTerminal})
}

func (s *Service) removeRule(c *gin.Context) {
	res := s.db.WithContext(c.Request.Context()).Exec(`DELETE FROM server_group_rules WHERE id = ? AND server_group_id = ?`, c.Param("rule_id"), c.Param("id"))
	switch {
	case res.Error != nil:
		httpx.Fail(c, s.log, fmt.Errorf("remove rule: %w", res.Error))
	case res.RowsAffected == 0:
		httpx.Fail(c, s.log, apperr.NotFound("rule %s not found", c.Param("rule_id")))
	default:
		c.Status(http.StatusNoContent)
	}
}
