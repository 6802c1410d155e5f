package webhook

import (
	"context"
	"fmt"

	"fabu.dev/libs/apperr"
)

// A trigger URL acts with the rights of the user who made it (projects.trigger_token_created_by),
// read each time it fires: the gateway refuses to make one for a user who may not deploy the
// project, and this check keeps it that way after the creator is demoted, loses a server-group
// rule or is disabled. The rules are the gateway's (services/gateway/authz.go, mayDeploy); a
// service never imports another, so they are restated here as one query each.

// projectRoleRank orders project roles, weakest first; 0 is no role.
var projectRoleRank = map[string]int{"viewer": 1, "developer": 2, "maintainer": 3, "owner": 4}

// errCreatorMayNotDeploy is the answer to a trigger URL whose creator may not deploy now. It
// names neither the creator nor the servers: whoever holds the URL is not a signed-in user.
var errCreatorMayNotDeploy = apperr.Forbidden("the user who created this trigger URL may not deploy this project now " +
	"(role, server group rules or a disabled account); someone who may must create a new one")

// creatorMayDeploy checks that user creator may deploy project pid: an enabled user, and an
// administrator or someone whose project role reaches the project's deploy_role and whom a
// rule of every server group among the project's targets allows to deploy.
func (s *Service) creatorMayDeploy(ctx context.Context, pid, creator string) error {
	if creator == "" {
		return errCreatorMayNotDeploy // made before creators were recorded
	}
	db := s.db.WithContext(ctx)
	var users []struct{ Role string }
	if err := db.Table("users").Select("role").Where("id = ? AND disabled_at IS NULL", creator).Scan(&users).Error; err != nil {
		return fmt.Errorf("load trigger URL creator: %w", err)
	}
	switch {
	case len(users) == 0:
		return errCreatorMayNotDeploy
	case users[0].Role == "admin":
		return nil
	}
	var p struct {
		ProjectGroupID *string
		DeployRole     string
	}
	if err := db.Table("projects").Select("project_group_id, deploy_role").Where("id = ?", pid).Take(&p).Error; err != nil {
		return fmt.Errorf("load project %s: %w", pid, err)
	}
	if p.ProjectGroupID == nil {
		return errCreatorMayNotDeploy
	}
	var roles []string
	err := db.Table("project_group_members").Where("project_group_id = ?", *p.ProjectGroupID).
		Where("user_id = ? OR user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?)", creator, creator).
		Pluck("role", &roles).Error
	if err != nil {
		return fmt.Errorf("load roles of the trigger URL creator: %w", err)
	}
	best := 0
	for _, r := range roles {
		best = max(best, projectRoleRank[r])
	}
	if best == 0 || best < projectRoleRank[p.DeployRole] {
		return errCreatorMayNotDeploy
	}
	var denied int64
	err = db.Table("servers").
		Where("servers.id IN (SELECT server_id FROM project_servers WHERE project_id = ?)", pid).
		Where("servers.server_group_id IS NOT NULL").
		Where(`NOT EXISTS (SELECT 1 FROM server_group_rules r WHERE r.server_group_id = servers.server_group_id AND r.may_deploy AND
			(r.user_id = ? OR r.user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?)))`, creator, creator).
		Count(&denied).Error
	if err != nil {
		return fmt.Errorf("check server group rules of the trigger URL creator: %w", err)
	}
	if denied > 0 {
		return errCreatorMayNotDeploy
	}
	return nil
}
