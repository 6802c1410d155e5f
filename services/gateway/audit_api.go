package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/httpx"
)

// maxAuditExport bounds the rows of one CSV export; narrow the filters for more.
const maxAuditExport = 200_000

// auditRoutes mounts the audit log's reading side:
// GET /audit?actor=&action=&target=&outcome=&since=&until=&q=&limit=&before= and
// GET /audit/export.csv with the same filters.
func (s *Service) auditRoutes(api gin.IRouter) {
	api.GET("/audit", s.listAudit)
	api.GET("/audit/export.csv", s.exportAudit)
}

// requireAuditor answers 403 unless the caller is an administrator: the log shows every
// user's actions and addresses.
func (s *Service) requireAuditor(c *gin.Context) bool {
	if currentUser(c).Role != "admin" {
		httpx.Fail(c, s.log, apperr.Forbidden("only administrators may read the audit log"))
		return false
	}
	return true
}

func (s *Service) listAudit(c *gin.Context) {
	if !s.requireAuditor(c) {
		return
	}
	f, err := auditFilter(c)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	p, err := audit.Query(s.db.WithContext(c.Request.Context()), f)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// exportAudit streams every entry the filters select as CSV, newest first, and records
// the export itself: who took a copy of the log matters as much as who changed things.
func (s *Service) exportAudit(c *gin.Context) {
	if !s.requireAuditor(c) {
		return
	}
	f, err := auditFilter(c)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	u := currentUser(c)
	ctx := c.Request.Context()
	err = audit.Record(s.db.WithContext(ctx), audit.Entry{Actor: u.Username, ActorID: u.ID, Action: "audit.export",
		Target: "audit", Outcome: audit.OK, IP: c.RemoteIP(), UserAgent: c.Request.UserAgent(),
		Detail: map[string]any{"filters": c.Request.URL.Query()}})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	name := "fabu-audit-" + time.Now().UTC().Format("20060102T150405Z") + ".csv"
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	w, err := audit.NewCSVWriter(c.Writer)
	if err == nil {
		err = audit.Each(s.db.WithContext(ctx), f, maxAuditExport, w.Write)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		// The status is sent; a broken export ends early, and the log says why.
		s.log.Error("audit export", "err", err)
	}
}

func auditFilter(c *gin.Context) (audit.Filter, error) {
	f := audit.Filter{Actor: c.Query("actor"), Action: c.Query("action"), Target: c.Query("target"),
		Outcome: c.Query("outcome"), Q: c.Query("q")}
	switch f.Outcome {
	case "", audit.OK, audit.Refused, audit.Failed:
	default:
		return f, apperr.Invalid("outcome: one of ok, refused, failed")
	}
	for _, v := range []string{f.Actor, f.Action, f.Target, f.Q} {
		if len(v) > 200 {
			return f, apperr.Invalid("filters are at most 200 characters")
		}
	}
	var err error
	if f.Since, err = auditTime(c, "since"); err != nil {
		return f, err
	}
	if f.Until, err = auditTime(c, "until"); err != nil {
		return f, err
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return f, apperr.Invalid("limit: 1 to %d", audit.MaxLimit)
		}
		f.Limit = n
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, apperr.Invalid("before: the next cursor of a previous page")
		}
		f.Before = n
	}
	return f, nil
}

// auditTime reads an RFC 3339 time or a date (midnight UTC).
func auditTime(c *gin.Context, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apperr.Invalid("%s: a time like 2026-05-01T10:00:00Z or a date like 2026-05-01", name)
}
