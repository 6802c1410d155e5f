package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
)

// RunBody is a run as the API shows it.
type RunBody struct {
	ID          string     `json:"id"`
	ProjectID   string     `json:"project_id"`
	Project     string     `json:"project"`
	Ref         string     `json:"ref"`
	Commit      string     `json:"commit"`
	Status      string     `json:"status"`
	Progress    int        `json:"progress"`
	Error       string     `json:"error"`
	Trigger     string     `json:"trigger"`
	TriggeredBy string     `json:"triggered_by"`
	ReleaseID   string     `json:"release_id"`
	RollbackOf  string     `json:"rollback_of,omitempty"` // a rollback: the run whose release it puts back
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	// LogsPrunedAt is set when retention removed the run's log (retention.go).
	LogsPrunedAt *time.Time `json:"logs_pruned_at,omitempty"`
	// Progress estimated from history (estimate.go): progress above is then the estimate's
	// percentage while the run is under way. Stages only in GET /runs/:id.
	Estimate
	Stages []StageBody `json:"stages,omitempty"`
}

func runBody(r runs.Run, project string) RunBody {
	return RunBody{ID: r.ID, ProjectID: r.ProjectID, Project: project, Ref: r.Ref, Commit: r.CommitSHA,
		Status: string(r.Status), Progress: r.Progress, Error: r.Error, Trigger: r.Trigger, TriggeredBy: r.TriggeredBy,
		ReleaseID: r.ReleaseID, RollbackOf: r.RollbackOf, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		LogsPrunedAt: r.LogsPrunedAt}
}

type startRequest struct {
	Ref string `json:"ref"`
}

// startRun requests a run of a project at ref (default: the project's branch). An empty
// body is allowed.
func (s *Service) startRun(c *gin.Context) {
	var req startRequest
	if c.Request.ContentLength != 0 {
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	p, err := s.findProject(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if req.Ref == "" {
		req.Ref = p.Branch
	}
	if gitref.Valid(req.Ref) != nil && gitref.ValidCommit(req.Ref) != nil {
		httpx.Fail(c, s.log, apperr.Invalid("ref %q is neither a valid branch or tag name nor a commit id", req.Ref))
		return
	}
	r := runs.Run{ProjectID: p.ID, Ref: req.Ref, Trigger: "manual", TriggeredBy: currentUser(c).Username}
	if err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error { return runs.Request(tx, &r) }); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.kick()
	c.JSON(http.StatusCreated, runBody(r, p.Name))
}

type runRow struct {
	runs.Run
	ProjectName string
	ProjectType string
}

func (s *Service) runsQuery(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table("runs").Select("runs.*, projects.name AS project_name, projects.type AS project_type").
		Joins("JOIN projects ON projects.id = runs.project_id")
}

func (s *Service) listRuns(c *gin.Context) {
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > s.cfg.MaxRunsLimit {
		httpx.Fail(c, s.log, apperr.Invalid("limit must be 1-%d", s.cfg.MaxRunsLimit))
		return
	}
	q := s.viewableProjects(c, s.runsQuery(c.Request.Context()), "runs.project_id")
	if pid := c.Query("project_id"); pid != "" {
		q = q.Where("runs.project_id = ?", pid)
	}
	var rows []runRow
	if err := q.Order("runs.created_at DESC, runs.id DESC").Limit(limit).Scan(&rows).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list runs: %w", err))
		return
	}
	out := make([]RunBody, len(rows))
	for i, r := range rows {
		out[i] = runBody(r.Run, r.ProjectName)
	}
	if err := s.estimated(c.Request.Context(), rows, out, false, false); err != nil { // runs under way only
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) findRun(ctx context.Context, id string) (RunBody, error) {
	var rows []runRow
	if err := s.runsQuery(ctx).Where("runs.id = ?", id).Limit(1).Scan(&rows).Error; err != nil {
		return RunBody{}, fmt.Errorf("load run %s: %w", id, err)
	}
	if len(rows) == 0 {
		return RunBody{}, apperr.NotFound("run %s not found", id)
	}
	return runBody(rows[0].Run, rows[0].ProjectName), nil
}

// findRunEstimated loads run id with its stages and its estimate (estimate.go).
func (s *Service) findRunEstimated(ctx context.Context, id string) (RunBody, error) {
	var rows []runRow
	if err := s.runsQuery(ctx).Where("runs.id = ?", id).Limit(1).Scan(&rows).Error; err != nil {
		return RunBody{}, fmt.Errorf("load run %s: %w", id, err)
	}
	if len(rows) == 0 {
		return RunBody{}, apperr.NotFound("run %s not found", id)
	}
	out := []RunBody{runBody(rows[0].Run, rows[0].ProjectName)}
	if err := s.estimated(ctx, rows, out, true, true); err != nil {
		return RunBody{}, err
	}
	return out[0], nil
}

func (s *Service) getRun(c *gin.Context) {
	r, err := s.findRunEstimated(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func queryInt(c *gin.Context, name string, def, lo, hi int) (int, error) {
	v, err := strconv.Atoi(c.DefaultQuery(name, strconv.Itoa(def)))
	if err != nil || v < lo || v > hi {
		return 0, apperr.Invalid("%s must be an integer %d-%d", name, lo, hi)
	}
	return v, nil
}

// getLogs returns a page of a run's stored log. done tells that the run has finished and
// no line after the last one returned will ever come.
func (s *Service) getLogs(c *gin.Context) {
	after, err := queryInt(c, "after", 0, 0, 1<<30)
	if err == nil {
		var limit int
		if limit, err = queryInt(c, "limit", 1000, 1, 5000); err == nil {
			s.writeLogPage(c, after, limit)
			return
		}
	}
	httpx.Fail(c, s.log, err)
}

func (s *Service) writeLogPage(c *gin.Context, after, limit int) {
	ctx := c.Request.Context()
	// Read the status before the lines: if the run was final then, every line is stored.
	r, err := s.findRun(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	lines, err := runlog.Read(ctx, s.db.DB, r.ID, after, limit)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if lines == nil {
		lines = []runlog.Line{}
	}
	done := runs.Status(r.Status).Final() && len(lines) < limit
	c.JSON(http.StatusOK, gin.H{"lines": lines, "status": r.Status, "progress": r.Progress, "done": done,
		"logs_pruned_at": r.LogsPrunedAt}) // set when retention removed the log (retention.go)
}

// cancelRun cancels a run: a requested or queued run at once, a building or deploying one
// by marking it, so its worker stops its processes and finishes it as cancelled at its next
// heartbeat. A final run is a conflict.
func (s *Service) cancelRun(c *gin.Context) {
	ctx := c.Request.Context()
	user := currentUser(c).Username
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		r, err := runs.Get(tx, c.Param("id"))
		if err != nil {
			return err
		}
		switch {
		case r.Status.Final():
			return apperr.Conflict("run %s is already %s", r.ID, r.Status)
		case r.Status == runs.StatusRequested || r.Status == runs.StatusQueued:
			return runs.Finish(tx, r, []runs.Status{runs.StatusRequested, runs.StatusQueued}, runs.StatusCancelled, "cancelled by "+user, 0)
		default:
			return runs.CancelRequest(tx, r.ID, user)
		}
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.kick()
	r, err := s.findRun(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusAccepted, r)
}

// rollbackRun requests a rollback to the release run :id deployed: a run of its project
// that builds nothing and switches the targets back to that release (services/builder and
// services/deployer rollback.go). It queues under the target lock like any run. Only a
// succeeded run with a release can be rolled back to; whether that release is still on
// every target is the deployer's to check, before it switches any.
func (s *Service) rollbackRun(c *gin.Context) {
	ctx := c.Request.Context()
	if c.Request.ContentLength != 0 { // nothing to say but the run in the path
		var req struct{}
		if err := httpx.Bind(c, &req); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	var r runs.Run
	var project string
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		old, err := runs.Get(tx, c.Param("id"))
		if err != nil {
			return err
		}
		if old.Status != runs.StatusSucceeded || old.ReleaseID == "" {
			return apperr.Conflict("run %s did not deploy a release (it is %s); only a succeeded run can be rolled back to", old.ID, old.Status)
		}
		if err := tx.Table("projects").Select("name").Where("id = ?", old.ProjectID).Scan(&project).Error; err != nil {
			return fmt.Errorf("load project: %w", err)
		}
		r = runs.Run{ProjectID: old.ProjectID, Ref: old.Ref, CommitSHA: old.CommitSHA, RollbackOf: old.ID,
			Trigger: "rollback", TriggeredBy: currentUser(c).Username}
		return runs.Request(tx, &r)
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	s.kick()
	c.JSON(http.StatusCreated, runBody(r, project))
}
