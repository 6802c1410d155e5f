package gateway

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/authn"
	"fabu.dev/libs/httpx"
)

// User is the authenticated caller as the API shows it.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Role     string `json:"role"`
}

const userKey = "fabu.user"

func currentUser(c *gin.Context) User {
	u, _ := c.Get(userKey)
	user, _ := u.(User)
	return user
}

// authenticator returns the service's authenticator; its key cache lives as long as the
// service.
func (s *Service) authenticator() *authn.Authenticator { return s.authn }

// authenticate admits requests that carry a valid access token (an EdDSA JWT from the auth
// service, checked against the signing keys and revocation list in the database) or API
// token, whose scopes allow the request. Browsers cannot set headers on a WebSocket, so
// the live-log and terminal sockets alone may pass the token as access_token.
func (s *Service) authenticate(c *gin.Context) {
	raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok && (strings.HasSuffix(c.FullPath(), "/logs/ws") || c.FullPath() == terminalRoute) {
		raw, ok = c.GetQuery("access_token")
	}
	if !ok || raw == "" {
		httpx.Fail(c, s.log, apperr.Unauthorized("sign in first: missing bearer token"))
		return
	}
	p, err := s.authenticator().Authenticate(c.Request.Context(), raw)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	// Set before the scope check, so that the audit log names who was refused.
	c.Set(userKey, User{ID: p.UserID, Username: p.Username, Role: p.Role})
	if need := requiredScope(c.Request.Method, c.FullPath()); !p.Allows(need) {
		httpx.Fail(c, s.log, apperr.Forbidden("this token lacks scope %q for %s %s", need, c.Request.Method, c.FullPath()))
		return
	}
	c.Next()
}

// adminScopeFamilies are the routes of user, group, server-group and forge-connection
// administration (apply writes connections too). Their administrator-only calls, reads
// included, need a token's admin scope: a write token must not create an administrator.
var adminScopeFamilies = []string{"/api/v1/users", "/api/v1/user-groups", "/api/v1/project-groups",
	"/api/v1/server-groups", "/api/v1/connections", "/api/v1/apply"}

// requiredScope is the scope a request needs: administration (adminScopeFamilies) "admin",
// reading "read", starting a run "deploy", any other change "write" — and so does the
// terminal, which is a shell on a server.
func requiredScope(method, route string) string {
	switch {
	case isAdministration(method, route):
		return authn.ScopeAdmin
	case route == terminalRoute:
		return authn.ScopeWrite
	case method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions:
		return authn.ScopeRead
	case method == http.MethodPost && (route == "/api/v1/projects/:id/runs" || route == "/api/v1/runs/:id/cancel" ||
		route == "/api/v1/runs/:id/rollback"):
		return authn.ScopeDeploy
	default:
		return authn.ScopeWrite
	}
}

// isAdministration reports whether route is an administrator-only route of
// adminScopeFamilies. Routes of those families open to other users (the group names every
// user may list, the members a project group's owner manages) keep their usual scope.
func isAdministration(method, route string) bool {
	if r, ok := rules[method+" "+route]; !ok || r.kind != adminOnly {
		return false
	}
	for _, f := range adminScopeFamilies {
		if route == f || strings.HasPrefix(route, f+"/") {
			return true
		}
	}
	return false
}
