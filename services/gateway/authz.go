package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
)

// Authorization: who may call which route.
//
// A system administrator (users.role "admin") may do everything. Everyone else holds a role
// in project groups (viewer < developer < maintainer < owner), directly or through user
// groups; the highest applies. Viewers read a group's projects and runs; developers also
// deploy projects whose deploy_role is developer; maintainers deploy every project of the
// group and change its projects, sources, hooks and trigger links; owners also delete
// projects and manage the group's members and its projects' access (group and deploy_role). Servers, connections,
// users, groups and apply are for administrators; any signed-in user may read the server
// list (names, addresses and pinned host keys, no secrets) because project forms pick
// servers from it. A deploy also needs every target server that belongs to a server group
// to allow the caller to deploy (server_group_rules).
//
// The rules live in one table keyed by method and route, enforced by one middleware
// (authorize) on the whole API: a route without a rule is refused, so a new route cannot
// be reachable by accident, and TestPermissionMatrix fails until the route has both a rule
// and an expected outcome per role. The table, rather than a middleware per route in
// Routes, also covers routes mounted from other files (forgeRoutes, triggerLinkRoutes).

// Project roles, weakest first.
const (
	RoleViewer     = "viewer"
	RoleDeveloper  = "developer"
	RoleMaintainer = "maintainer"
	RoleOwner      = "owner"
)

// System roles (users.role).
const (
	SystemAdmin = "admin"
	SystemUser  = "user"
)

// roleRank orders project roles; 0 is no role.
func roleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleDeveloper:
		return 2
	case RoleMaintainer:
		return 3
	case RoleOwner:
		return 4
	}
	return 0
}

// DefaultProjectGroup is the id (and name) of the group the roles migration creates; new
// projects join it.
const DefaultProjectGroup = "default"

// ruleKind says what a rule checks.
type ruleKind int

const (
	anyUser        ruleKind = iota + 1 // any signed-in, enabled user
	adminOnly                          // system administrators
	onProject                          // a role on the project named by :id
	onRun                              // a role on the project of the run named by :id
	onGroup                            // a role on the project group named by :id
	newProject                         // a role on the default group, where new projects go
	deployProject                      // the project's deploy_role and server-group rules
	deployRun                          // deployProject on the project of the run named by :id
	rollbackRun                        // deployRun and the environment rules: a rollback is a deploy
	deliveries                         // admin, or viewer of the ?project_id given
	onTicket                           // see the ticket named by :id: a role on its project, or its approver (tickets_rules.go)
	reviewTicket                       // approve or reject the ticket named by :id: its approver
	cancelTicket                       // cancel the ticket named by :id: its requester or an administrator
	terminalServer                     // open a terminal on the server named by :id: MayTerminal
	armProject                         // role on the project, and deployProject's rules: a trigger URL or hook deploys without a person
)

type rule struct {
	kind ruleKind
	role string // the least project role, for onProject, onRun, onGroup, newProject
}

// rules maps "METHOD route" to what a caller needs. Every route of Routes must be here.
var rules = map[string]rule{
	"GET /api/v1/me":               {kind: anyUser},
	"GET /api/v1/audit":            {kind: adminOnly},
	"GET /api/v1/audit/export.csv": {kind: adminOnly},
	"GET /api/v1/ssh/public-key":   {kind: anyUser},

	"GET /api/v1/servers":              {kind: anyUser},
	"GET /api/v1/servers/:id":          {kind: anyUser},
	"GET /api/v1/servers/:id/terminal": {kind: terminalServer},
	"POST /api/v1/servers":             {kind: adminOnly},
	"PUT /api/v1/servers/:id":          {kind: adminOnly},
	"DELETE /api/v1/servers/:id":       {kind: adminOnly},

	"GET /api/v1/projects":                                {kind: anyUser}, // filtered to what the caller may view
	"POST /api/v1/projects":                               {kind: newProject, role: RoleMaintainer},
	"GET /api/v1/projects/:id":                            {kind: onProject, role: RoleViewer},
	"PUT /api/v1/projects/:id":                            {kind: onProject, role: RoleMaintainer},
	"DELETE /api/v1/projects/:id":                         {kind: onProject, role: RoleOwner},
	"POST /api/v1/projects/:id/runs":                      {kind: deployProject},
	"GET /api/v1/projects/:id/trigger-token":              {kind: onProject, role: RoleViewer},
	"POST /api/v1/projects/:id/trigger-token":             {kind: armProject, role: RoleMaintainer},
	"DELETE /api/v1/projects/:id/trigger-token":           {kind: onProject, role: RoleMaintainer},
	"GET /api/v1/projects/:id/source":                     {kind: onProject, role: RoleViewer},
	"PUT /api/v1/projects/:id/source":                     {kind: onProject, role: RoleMaintainer},
	"DELETE /api/v1/projects/:id/source":                  {kind: onProject, role: RoleMaintainer},
	"GET /api/v1/projects/:id/refs":                       {kind: onProject, role: RoleViewer},
	"GET /api/v1/projects/:id/hook":                       {kind: onProject, role: RoleViewer},
	"POST /api/v1/projects/:id/hook":                      {kind: armProject, role: RoleMaintainer},
	"DELETE /api/v1/projects/:id/hook":                    {kind: onProject, role: RoleMaintainer},
	"GET /api/v1/projects/:id/access":                     {kind: onProject, role: RoleViewer},
	"PUT /api/v1/projects/:id/access":                     {kind: onProject, role: RoleOwner},
	"POST /api/v1/apply":                                  {kind: adminOnly},
	"GET /api/v1/projects/:id/approval":                   {kind: onProject, role: RoleViewer},
	"PUT /api/v1/projects/:id/approval":                   {kind: onProject, role: RoleOwner},
	"POST /api/v1/projects/:id/tickets":                   {kind: onProject, role: RoleDeveloper},
	"GET /api/v1/tickets":                                 {kind: anyUser}, // filtered to what the caller may view or approve
	"GET /api/v1/tickets/:id":                             {kind: onTicket},
	"POST /api/v1/tickets/:id/approve":                    {kind: reviewTicket},
	"POST /api/v1/tickets/:id/reject":                     {kind: reviewTicket},
	"POST /api/v1/tickets/:id/cancel":                     {kind: cancelTicket},
	"GET /api/v1/deliveries":                              {kind: deliveries},
	"GET /api/v1/runs":                                    {kind: anyUser}, // filtered to what the caller may view
	"GET /api/v1/runs/:id":                                {kind: onRun, role: RoleViewer},
	"GET /api/v1/runs/:id/logs":                           {kind: onRun, role: RoleViewer},
	"GET /api/v1/runs/:id/git":                            {kind: onRun, role: RoleViewer}, // merged refs, post-success git actions
	"GET /api/v1/runs/:id/logs/ws":                        {kind: onRun, role: RoleViewer},
	"POST /api/v1/runs/:id/cancel":                        {kind: deployRun},
	"POST /api/v1/runs/:id/rollback":                      {kind: rollbackRun},
	"GET /api/v1/runs/:id/artifact":                       {kind: onRun, role: RoleViewer},        // the artifact's manifest
	"GET /api/v1/projects/:id/secrets":                    {kind: onProject, role: RoleDeveloper}, // names only, never values
	"PUT /api/v1/projects/:id/secrets/:name":              {kind: onProject, role: RoleMaintainer},
	"DELETE /api/v1/projects/:id/secrets/:name":           {kind: onProject, role: RoleMaintainer},
	"GET /api/v1/connections":                             {kind: adminOnly},
	"POST /api/v1/connections":                            {kind: adminOnly},
	"GET /api/v1/connections/:id":                         {kind: adminOnly},
	"PUT /api/v1/connections/:id":                         {kind: adminOnly},
	"DELETE /api/v1/connections/:id":                      {kind: adminOnly},
	"POST /api/v1/connections/:id/sync":                   {kind: adminOnly},
	"GET /api/v1/connections/:id/repos":                   {kind: adminOnly},
	"DELETE /api/v1/connections/:id/repos/:repo_id":       {kind: adminOnly},
	"POST /api/v1/connections/:id/repos/:repo_id/restore": {kind: adminOnly},

	"GET /api/v1/users":                               {kind: adminOnly},
	"POST /api/v1/users":                              {kind: adminOnly},
	"PUT /api/v1/users/:id":                           {kind: adminOnly},
	"GET /api/v1/user-groups":                         {kind: anyUser}, // names only; owners pick groups as members
	"POST /api/v1/user-groups":                        {kind: adminOnly},
	"PUT /api/v1/user-groups/:id":                     {kind: adminOnly},
	"DELETE /api/v1/user-groups/:id":                  {kind: adminOnly},
	"GET /api/v1/user-groups/:id/members":             {kind: adminOnly},
	"POST /api/v1/user-groups/:id/members":            {kind: adminOnly},
	"DELETE /api/v1/user-groups/:id/members/:user_id": {kind: adminOnly},

	"GET /api/v1/project-groups":                           {kind: anyUser}, // filtered to the caller's groups
	"POST /api/v1/project-groups":                          {kind: adminOnly},
	"PUT /api/v1/project-groups/:id":                       {kind: adminOnly},
	"DELETE /api/v1/project-groups/:id":                    {kind: adminOnly},
	"GET /api/v1/project-groups/:id/members":               {kind: onGroup, role: RoleViewer},
	"POST /api/v1/project-groups/:id/members":              {kind: onGroup, role: RoleOwner},
	"PUT /api/v1/project-groups/:id/members/:member_id":    {kind: onGroup, role: RoleOwner},
	"DELETE /api/v1/project-groups/:id/members/:member_id": {kind: onGroup, role: RoleOwner},

	"GET /api/v1/server-groups":                       {kind: adminOnly},
	"POST /api/v1/server-groups":                      {kind: adminOnly},
	"PUT /api/v1/server-groups/:id":                   {kind: adminOnly},
	"DELETE /api/v1/server-groups/:id":                {kind: adminOnly},
	"PUT /api/v1/server-groups/:id/servers":           {kind: adminOnly},
	"GET /api/v1/server-groups/:id/rules":             {kind: adminOnly},
	"POST /api/v1/server-groups/:id/rules":            {kind: adminOnly},
	"DELETE /api/v1/server-groups/:id/rules/:rule_id": {kind: adminOnly},
}

// caller is the authorized user: their current system role from the database (a token's
// role claim may be up to its lifetime old).
type caller struct {
	User
	Admin bool
}

const callerKey = "fabu.caller"

func currentCaller(c *gin.Context) caller {
	v, _ := c.Get(callerKey)
	cl, _ := v.(caller)
	return cl
}

// authorize enforces rules after authenticate. It reloads the caller's role and refuses
// disabled users, so a demotion or a disabling takes effect on the next request.
func (s *Service) authorize(c *gin.Context) {
	r, ok := rules[c.Request.Method+" "+c.FullPath()]
	if !ok {
		httpx.Fail(c, s.log, apperr.Forbidden("no permission rule for %s %s", c.Request.Method, c.FullPath()))
		return
	}
	ctx := c.Request.Context()
	u := currentUser(c)
	var row struct {
		Role       string
		DisabledAt *string
	}
	err := s.db.WithContext(ctx).Table("users").Select("role, CAST(disabled_at AS TEXT) AS disabled_at").
		Where("id = ?", u.ID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && row.DisabledAt != nil) {
		httpx.Fail(c, s.log, apperr.Unauthorized("this account is disabled or gone"))
		return
	}
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("load caller %s: %w", u.ID, err))
		return
	}
	u.Role = row.Role
	c.Set(userKey, u)
	cl := caller{User: u, Admin: row.Role == SystemAdmin}
	c.Set(callerKey, cl)
	if err := s.check(c, cl, r); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Next()
}

func (s *Service) check(c *gin.Context, cl caller, r rule) error {
	ctx := c.Request.Context()
	switch r.kind {
	case anyUser:
		return nil
	case adminOnly:
		if cl.Admin {
			return nil
		}
		return apperr.Forbidden("only administrators may %s %s", c.Request.Method, c.FullPath())
	case onProject:
		_, err := s.needProjectRole(ctx, cl, c.Param("id"), r.role)
		return err
	case armProject:
		if _, err := s.needProjectRole(ctx, cl, c.Param("id"), r.role); err != nil {
			return err
		}
		err := s.mayDeploy(ctx, cl, c.Param("id"))
		if code, msg := apperr.Public(err); err != nil && code == apperr.CodeForbidden {
			return apperr.Forbidden("a trigger URL or hook deploys only where you may: %s", msg)
		}
		return err
	case onRun:
		var pid string
		err := s.db.WithContext(ctx).Table("runs").Select("project_id").Where("id = ?", c.Param("id")).Scan(&pid).Error
		if err != nil {
			return fmt.Errorf("load run %s: %w", c.Param("id"), err)
		}
		if pid == "" {
			return apperr.NotFound("run %s not found", c.Param("id"))
		}
		if _, err := s.needProjectRole(ctx, cl, pid, r.role); err != nil {
			return notFoundAs(err, apperr.NotFound("run %s not found", c.Param("id")))
		}
		return nil
	case onGroup:
		return s.needGroupRole(ctx, cl, c.Param("id"), r.role)
	case newProject:
		if err := s.needGroupRole(ctx, cl, DefaultProjectGroup, r.role); err != nil {
			return apperr.Forbidden("creating a project needs the %s role in project group %q", r.role, DefaultProjectGroup)
		}
		return nil
	case deployProject:
		if err := s.mayDeploy(ctx, cl, c.Param("id")); err != nil {
			return err
		}
		return s.needNoTicket(ctx, cl, c.Param("id")) // environment rules (tickets_rules.go)
	case terminalServer:
		return s.mayOpenTerminal(ctx, cl, c.Param("id"))
	case onTicket, reviewTicket, cancelTicket:
		return s.ticketRule(ctx, cl, r.kind, c.Param("id"))
	case deployRun, rollbackRun:
		var pid string
		err := s.db.WithContext(ctx).Table("runs").Select("project_id").Where("id = ?", c.Param("id")).Scan(&pid).Error
		if err != nil {
			return fmt.Errorf("load run %s: %w", c.Param("id"), err)
		}
		if pid == "" {
			return apperr.NotFound("run %s not found", c.Param("id"))
		}
		if _, err := s.needProjectRole(ctx, cl, pid, RoleViewer); err != nil {
			return notFoundAs(err, apperr.NotFound("run %s not found", c.Param("id")))
		}
		if err := s.mayDeploy(ctx, cl, pid); err != nil || r.kind == deployRun {
			return err
		}
		return s.needNoTicket(ctx, cl, pid) // a rollback changes what runs, like a deploy (docs/decisions.md)
	case deliveries:
		if cl.Admin {
			return nil
		}
		pid := c.Query("project_id")
		if pid == "" {
			return apperr.Forbidden("only administrators may list every delivery; filter by a project_id you may view")
		}
		_, err := s.needProjectRole(ctx, cl, pid, RoleViewer)
		return err
	}
	return apperr.Forbidden("unknown permission rule")
}

// notFoundAs replaces a not-found error by nf (so a run's project is not named), and
// keeps every other error.
func notFoundAs(err, nf error) error {
	if apperr.CodeOf(err) == apperr.CodeNotFound {
		return nf
	}
	return err
}

// groupRole returns cl's role in project group gid ("" for none); administrators are owners.
func (s *Service) groupRole(ctx context.Context, cl caller, gid string) (string, error) {
	if cl.Admin {
		return RoleOwner, nil
	}
	if gid == "" {
		return "", nil
	}
	var roles []string
	err := s.db.WithContext(ctx).Table("project_group_members").Where("project_group_id = ?", gid).
		Where("user_id = ? OR user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?)", cl.ID, cl.ID).
		Pluck("role", &roles).Error
	if err != nil {
		return "", fmt.Errorf("load roles of %s in group %s: %w", cl.Username, gid, err)
	}
	best := ""
	for _, r := range roles {
		if roleRank(r) > roleRank(best) {
			best = r
		}
	}
	return best, nil
}

// projectAccess is a project's place in the permission model.
type projectAccess struct {
	ID             string
	ProjectGroupID *string
	DeployRole     string
}

func (s *Service) loadAccess(ctx context.Context, pid string) (projectAccess, error) {
	var pa projectAccess
	err := s.db.WithContext(ctx).Table("projects").Select("id, project_group_id, deploy_role").Where("id = ?", pid).Take(&pa).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return pa, apperr.NotFound("project %s not found", pid)
	}
	if err != nil {
		return pa, fmt.Errorf("load project %s: %w", pid, err)
	}
	return pa, nil
}

// needProjectRole returns cl's role on project pid when it is at least want. A caller who
// may not even view the project learns nothing of it: not found.
func (s *Service) needProjectRole(ctx context.Context, cl caller, pid, want string) (string, error) {
	pa, err := s.loadAccess(ctx, pid)
	if err != nil {
		return "", err
	}
	gid := ""
	if pa.ProjectGroupID != nil {
		gid = *pa.ProjectGroupID
	}
	role, err := s.groupRole(ctx, cl, gid)
	if err != nil {
		return "", err
	}
	if role == "" {
		return "", apperr.NotFound("project %s not found", pid)
	}
	if roleRank(role) < roleRank(want) {
		return role, apperr.Forbidden("this needs the %s role on the project; you are %s", want, role)
	}
	return role, nil
}

func (s *Service) needGroupRole(ctx context.Context, cl caller, gid, want string) error {
	var n int64
	if err := s.db.WithContext(ctx).Table("project_groups").Where("id = ?", gid).Count(&n).Error; err != nil {
		return fmt.Errorf("load project group %s: %w", gid, err)
	}
	role, err := s.groupRole(ctx, cl, gid)
	if err != nil {
		return err
	}
	if n == 0 || role == "" {
		return apperr.NotFound("project group %s not found", gid)
	}
	if roleRank(role) < roleRank(want) {
		return apperr.Forbidden("this needs the %s role in the project group; you are %s", want, role)
	}
	return nil
}

// mayDeploy checks that cl may deploy project pid: a role at least its deploy_role, and
// for every target server in a server group a rule of that group allowing cl to deploy.
func (s *Service) mayDeploy(ctx context.Context, cl caller, pid string) error {
	pa, err := s.loadAccess(ctx, pid)
	if err != nil {
		return err
	}
	if _, err := s.needProjectRole(ctx, cl, pid, pa.DeployRole); err != nil {
		if apperr.CodeOf(err) == apperr.CodeForbidden {
			return apperr.Forbidden("deploying this project needs the %s role", pa.DeployRole)
		}
		return err
	}
	if cl.Admin {
		return nil
	}
	denied, err := s.serversDenied(ctx, cl, "may_deploy", "SELECT server_id FROM project_servers WHERE project_id = ?", pid)
	if err != nil {
		return err
	}
	if len(denied) > 0 {
		return apperr.Forbidden("no server group rule lets you deploy to %v", denied)
	}
	return nil
}

// MayTerminal reports whether user userID may open a terminal on server serverID: an
// administrator always; anyone else only on a server in a group whose rules allow them.
// (Servers in no group have no terminal rule, so only administrators get one there.)
func (s *Service) MayTerminal(ctx context.Context, userID, serverID string) (bool, error) {
	var role string
	if err := s.db.WithContext(ctx).Table("users").Select("role").Where("id = ? AND disabled_at IS NULL", userID).Scan(&role).Error; err != nil {
		return false, fmt.Errorf("load user %s: %w", userID, err)
	}
	switch role {
	case "":
		return false, nil
	case SystemAdmin:
		return true, nil
	}
	var gid *string
	if err := s.db.WithContext(ctx).Table("servers").Select("server_group_id").Where("id = ?", serverID).Scan(&gid).Error; err != nil {
		return false, fmt.Errorf("load server %s: %w", serverID, err)
	}
	if gid == nil || *gid == "" {
		return false, nil
	}
	denied, err := s.serversDenied(ctx, caller{User: User{ID: userID}}, "may_terminal", "SELECT ?", serverID)
	return err == nil && len(denied) == 0, err
}

// needDeployOn checks, in db (a transaction that is changing targets), that cl may deploy
// to every server of serverIDs in a server group: what the deploy button checks, applied to
// the paths that add targets or arm a project to deploy without a person. why names the path.
func needDeployOn(db *gorm.DB, cl caller, serverIDs []string, why string) error {
	if cl.Admin || len(serverIDs) == 0 {
		return nil
	}
	denied, err := serversDeniedIn(db, cl, "may_deploy", "SELECT s2.id FROM servers s2 WHERE s2.id IN ?", serverIDs)
	if err != nil {
		return err
	}
	if len(denied) > 0 {
		return apperr.Forbidden("%s needs a server group rule letting you deploy to %v", why, denied)
	}
	return nil
}

// serversDenied returns the names of the servers in subquery (which selects server ids)
// that belong to a server group without a rule granting permission (a boolean column) to cl.
func (s *Service) serversDenied(ctx context.Context, cl caller, permission, subquery string, arg any) ([]string, error) {
	return serversDeniedIn(s.db.WithContext(ctx), cl, permission, subquery, arg)
}

func serversDeniedIn(db *gorm.DB, cl caller, permission, subquery string, arg any) ([]string, error) {
	var names []string
	err := db.Table("servers").
		Where("servers.id IN ("+subquery+")", arg).
		Where("servers.server_group_id IS NOT NULL").
		Where(`NOT EXISTS (SELECT 1 FROM server_group_rules r WHERE r.server_group_id = servers.server_group_id AND r.`+permission+` AND
			(r.user_id = ? OR r.user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?)))`, cl.ID, cl.ID).
		Order("servers.name").Pluck("servers.name", &names).Error
	if err != nil {
		return nil, fmt.Errorf("check server group rules: %w", err)
	}
	return names, nil
}

// viewableProjects narrows q to the projects the caller may view; column names the
// project id in q. Administrators see everything.
func (s *Service) viewableProjects(c *gin.Context, q *gorm.DB, column string) *gorm.DB {
	cl := currentCaller(c)
	if cl.Admin {
		return q
	}
	return q.Where(column+` IN (SELECT p.id FROM projects p JOIN project_group_members m ON m.project_group_id = p.project_group_id
		WHERE m.user_id = ? OR m.user_group_id IN (SELECT group_id FROM user_group_members WHERE user_id = ?))`, cl.ID, cl.ID)
}
