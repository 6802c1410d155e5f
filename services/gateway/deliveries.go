package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
)

// DeliveryBody is one received webhook delivery as the API shows it: what came in and what
// the webhook service made of it. Project is the project's current name ("" when the
// delivery named no known project or the project has been deleted since).
type DeliveryBody struct {
	ID          string    `json:"id"`
	Platform    string    `json:"platform"`
	Event       string    `json:"event"`
	ProjectID   string    `json:"project_id"`
	Project     string    `json:"project"`
	Verdict     string    `json:"verdict"`
	Reason      string    `json:"reason"`
	DeliveryKey string    `json:"delivery_key"`
	RunID       string    `json:"run_id"`
	Ref         string    `json:"ref"`
	Commit      string    `json:"commit"`
	ReceivedAt  time.Time `json:"received_at"`
}

type deliveryRow struct {
	ID          string
	Platform    string
	Event       string
	ProjectID   *string
	ProjectName *string
	Verdict     string
	Reason      string
	DeliveryKey string
	RunID       string
	Ref         string
	CommitSHA   string `gorm:"column:commit_sha"`
	ReceivedAt  time.Time
}

// deliveryVerdicts are the verdicts the webhook service records.
var deliveryVerdicts = map[string]bool{"triggered": true, "ignored": true, "rejected": true, "duplicate": true}

// deliveryID matches the IDs the API hands out (ULIDs, project IDs); anything else cannot
// name a row and is refused instead of being searched for.
var deliveryID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// listDeliveries answers GET /deliveries: received webhook deliveries, newest first, filtered
// by project_id, platform and verdict (an empty parameter filters nothing). Pages are keyset pages on (received_at, id): before
// is the id of the last delivery of the previous page, so rows recorded meanwhile neither
// shift a page nor appear twice.
func (s *Service) listDeliveries(c *gin.Context) {
	limit, err := queryInt(c, "limit", 50, 1, 200)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	tx := s.db.WithContext(c.Request.Context())
	q := tx.Table("webhook_deliveries AS d").
		Select("d.id, d.platform, d.event, d.project_id, p.name AS project_name, d.verdict, d.reason, " +
			"d.delivery_key, d.run_id, d.ref, d.commit_sha, d.received_at").
		Joins("LEFT JOIN projects p ON p.id = d.project_id")
	if v := c.Query("project_id"); v != "" {
		if !deliveryID.MatchString(v) {
			httpx.Fail(c, s.log, apperr.Invalid("project_id %q is not a project id", v))
			return
		}
		q = q.Where("d.project_id = ?", v)
	}
	if v := c.Query("platform"); v != "" {
		if !platforms[v] {
			httpx.Fail(c, s.log, apperr.Invalid("platform %q is not gitlab, github or gitee", v))
			return
		}
		q = q.Where("d.platform = ?", v)
	}
	if v := c.Query("verdict"); v != "" {
		if !deliveryVerdicts[v] {
			httpx.Fail(c, s.log, apperr.Invalid("verdict %q is not triggered, ignored, rejected or duplicate", v))
			return
		}
		q = q.Where("d.verdict = ?", v)
	}
	if v := c.Query("before"); v != "" {
		if !deliveryID.MatchString(v) {
			httpx.Fail(c, s.log, apperr.Invalid("before %q is not a delivery id", v))
			return
		}
		var n int64
		if err := tx.Table("webhook_deliveries").Where("id = ?", v).Count(&n).Error; err != nil {
			httpx.Fail(c, s.log, fmt.Errorf("look up delivery %s: %w", v, err))
			return
		}
		if n == 0 {
			httpx.Fail(c, s.log, apperr.Invalid("before %q: no such delivery", v))
			return
		}
		// The cursor's time is compared inside the database, never round-tripped through Go,
		// so the comparison is exact whatever precision the column stores.
		const at = "(SELECT received_at FROM webhook_deliveries WHERE id = ?)"
		q = q.Where("d.received_at < "+at+" OR (d.received_at = "+at+" AND d.id < ?)", v, v, v)
	}
	var rows []deliveryRow
	if err := q.Order("d.received_at DESC, d.id DESC").Limit(limit).Scan(&rows).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list deliveries: %w", err))
		return
	}
	out := make([]DeliveryBody, len(rows))
	for i, r := range rows {
		out[i] = DeliveryBody{ID: r.ID, Platform: r.Platform, Event: r.Event, Verdict: r.Verdict, Reason: r.Reason,
			DeliveryKey: r.DeliveryKey, RunID: r.RunID, Ref: r.Ref, Commit: r.CommitSHA, ReceivedAt: r.ReceivedAt.UTC()}
		if r.ProjectID != nil {
			out[i].ProjectID = *r.ProjectID
		}
		if r.ProjectName != nil {
			out[i].Project = *r.ProjectName
		}
	}
	c.JSON(http.StatusOK, out)
}
