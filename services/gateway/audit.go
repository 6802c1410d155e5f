package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/httpx"
)

// maxAuditCapture bounds how much of a response the audit middleware keeps to learn the id
// of what was created and the reason of a refusal.
const maxAuditCapture = 64 << 10

// auditActions names the actions of the API's mutating routes. A route missing here is
// still recorded, under a name derived from its template (auditAction).
var auditActions = map[string]string{
	"POST /api/v1/servers":                                "server.create",
	"PUT /api/v1/servers/:id":                             "server.update",
	"DELETE /api/v1/servers/:id":                          "server.delete",
	"POST /api/v1/projects":                               "project.create",
	"PUT /api/v1/projects/:id":                            "project.update",
	"DELETE /api/v1/projects/:id":                         "project.delete",
	"POST /api/v1/projects/:id/runs":                      "run.start",
	"POST /api/v1/runs/:id/rollback":                      "run.rollback",
	"POST /api/v1/projects/:id/tickets":                   "ticket.create",
	"PUT /api/v1/projects/:id/approval":                   "project.approval.update",
	"POST /api/v1/projects/:id/trigger-token":             "trigger_token.rotate",
	"DELETE /api/v1/projects/:id/trigger-token":           "trigger_token.revoke",
	"PUT /api/v1/projects/:id/source":                     "project.source.set",
	"DELETE /api/v1/projects/:id/source":                  "project.source.clear",
	"POST /api/v1/projects/:id/hook":                      "hook.install",
	"DELETE /api/v1/projects/:id/hook":                    "hook.remove",
	"POST /api/v1/apply":                                  "config.apply",
	"PUT /api/v1/projects/:id/secrets/:name":              "project.secret.set",
	"DELETE /api/v1/projects/:id/secrets/:name":           "project.secret.delete",
	"POST /api/v1/connections":                            "connection.create",
	"PUT /api/v1/connections/:id":                         "connection.update",
	"DELETE /api/v1/connections/:id":                      "connection.delete",
	"POST /api/v1/connections/:id/sync":                   "connection.sync",
	"DELETE /api/v1/connections/:id/repos/:repo_id":       "connection.repo.remove",
	"POST /api/v1/connections/:id/repos/:repo_id/restore": "connection.repo.restore",
	"GET " + terminalRoute:                                "server.terminal",
}

// auditWriter keeps the start of the response for the audit entry.
type auditWriter struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *auditWriter) keep(n int, write func() (int, error), b []byte) (int, error) {
	if room := maxAuditCapture - w.buf.Len(); room > 0 {
		w.buf.Write(b[:min(n, room)])
	}
	return write()
}

func (w *auditWriter) Write(b []byte) (int, error) {
	return w.keep(len(b), func() (int, error) { return w.ResponseWriter.Write(b) }, b)
}

func (w *auditWriter) WriteString(s string) (int, error) {
	return w.keep(len(s), func() (int, error) { return w.ResponseWriter.WriteString(s) }, []byte(s))
}

// recordAudit records every mutating API request, and every web terminal session, once it has run — also one refused by
// authentication or permissions, which is why it runs before them: the action (from the
// route's template, never the raw path, which may carry tokens), the target and its id, the
// outcome from the status, the caller, the connection's address and user agent, and a detail
// of the redacted request body, the path parameters and, when refused, the reason given.
func (s *Service) recordAudit(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		if c.FullPath() != terminalRoute {
			c.Next()
			return
		}
	}
	body := peekBody(c.Request)
	w := &auditWriter{ResponseWriter: c.Writer}
	c.Writer = w
	c.Next()
	c.Writer = w.ResponseWriter

	route := c.FullPath()
	status := c.Writer.Status()
	u := currentUser(c)
	e := audit.Entry{Actor: u.Username, ActorID: u.ID, Action: auditAction(c.Request.Method, route),
		Outcome: audit.Outcome(status), IP: c.RemoteIP(), UserAgent: c.Request.UserAgent()}
	e.Target, e.TargetID = auditTargetOf(route, c.Param("id"))
	detail := map[string]any{"route": c.Request.Method + " " + route, "status": status}
	params := map[string]any{}
	for _, p := range c.Params {
		if p.Key != "id" {
			params[p.Key] = p.Value
		}
	}
	if len(params) > 0 {
		detail["params"] = params
	}
	if outcome := terminalAuditDetail(c, detail); outcome != "" { // how a terminal session went (terminal.go)
		e.Outcome = outcome
	}
	if body != nil && !auditOmitsBody[c.Request.Method+" "+route] { // secret values (secrets_api.go)
		detail["request"] = body
	}
	var resp map[string]any
	if json.Unmarshal(w.buf.Bytes(), &resp) == nil {
		id, _ := resp["id"].(string)
		switch {
		case status >= 400:
			detail["reason"] = resp["message"]
			detail["code"] = resp["code"]
		case e.TargetID == "" && id != "":
			e.TargetID = id
		case id != "" && id != e.TargetID:
			detail["result_id"] = id
		}
	}
	if xff := c.Request.Header.Get("X-Forwarded-For"); xff != "" {
		detail["forwarded_for"] = xff // a claim of the client or a proxy; ip is the connection's address
	}
	e.Detail = detail
	ctx := context.WithoutCancel(c.Request.Context())
	if err := audit.Record(s.db.WithContext(ctx), e); err != nil {
		s.log.Error("audit log: entry not recorded", "action", e.Action, "route", route, "status", status, "err", err)
	}
}

// peekBody decodes a JSON request body for the audit detail and puts the bytes back for
// the handler. Bodies that are not JSON are described by their size only.
func peekBody(r *http.Request) any {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, httpx.MaxBody+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return map[string]any{"bytes": len(b), "json": false}
	}
	return v
}

// auditAction is the named action of a route, or one derived from its template: a POST to
// <things>/:id/<verb> is "<thing>.<verb>"; otherwise the last resource and the method's
// verb ("role.update"). A request that matched no route is "unknown".
func auditAction(method, route string) string {
	if a, ok := auditActions[method+" "+route]; ok {
		return a
	}
	segs := routeSegments(route)
	if len(segs) == 0 {
		return "unknown." + strings.ToLower(method)
	}
	last := segs[len(segs)-1]
	if method == http.MethodPost && len(segs) >= 3 && !isParam(last) && isParam(segs[len(segs)-2]) {
		return singular(segs[len(segs)-3]) + "." + last
	}
	res := ""
	for i := len(segs) - 1; i >= 0; i-- {
		if !isParam(segs[i]) {
			res = singular(segs[i])
			break
		}
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "update",
		http.MethodDelete: "delete"}[method]
	if verb == "" {
		verb = strings.ToLower(method)
	}
	return res + "." + verb
}

// auditTargetOf is the target of a route: the first resource and its :id.
func auditTargetOf(route, id string) (string, string) {
	segs := routeSegments(route)
	if len(segs) == 0 || isParam(segs[0]) {
		return "", id
	}
	if segs[0] == "apply" {
		return "config", id
	}
	return singular(segs[0]), id
}

func routeSegments(route string) []string {
	route = strings.TrimPrefix(route, "/api/v1")
	var out []string
	for _, s := range strings.Split(route, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isParam(seg string) bool { return strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") }

func singular(s string) string {
	s = strings.ReplaceAll(s, "-", "_")
	switch {
	case strings.HasSuffix(s, "ies"):
		return strings.TrimSuffix(s, "ies") + "y"
	case strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss"):
		return strings.TrimSuffix(s, "s")
	}
	return s
}
