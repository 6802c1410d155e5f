// Package runs is the run record and its state machine, shared by the services that move
// runs: the gateway and the webhook service request them, the builder queues, admits and
// builds them, the deployer ships and finishes them. Every transition is one guarded row
// update plus the outbox events announcing it, in the caller's transaction, so a state
// change and its announcement are never separated (DESIGN.md principles 1 and 2).
package runs

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/bus/outbox"
	"fabu.dev/libs/events"
	"fabu.dev/libs/ids"
)

// Status is where a run is in its life.
type Status string

// A run's statuses, in order of its life.
const (
	StatusRequested Status = "requested"
	StatusQueued    Status = "queued"
	StatusBuilding  Status = "building"
	StatusDeploying Status = "deploying"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Final reports whether s is an end state.
func (s Status) Final() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Active lists the statuses in which a worker holds the run and heartbeats it.
var Active = []Status{StatusBuilding, StatusDeploying}

// Run is one deploy of one project revision, as stored in the runs table.
type Run struct {
	ID             string `gorm:"primaryKey"`
	ProjectID      string
	Ref            string
	CommitSHA      string `gorm:"column:commit_sha"`
	Status         Status
	Trigger        string
	TriggeredBy    string
	Progress       int
	Error          string
	ArtifactPath   string
	ArtifactSHA256 string `gorm:"column:artifact_sha256"`
	ReleaseID      string
	// RollbackOf is, for a rollback, the earlier succeeded run whose release it puts back
	// (no build: services/builder rollback.go); "" for every other run.
	RollbackOf  string
	LockToken   int64
	HeartbeatAt *time.Time
	// CancelRequestedAt is set when a user asked to cancel the run while a worker held it;
	// the worker's next heartbeat fails and it finishes the run as cancelled.
	CancelRequestedAt *time.Time
	CancelRequestedBy string
	// LogsPrunedAt is when the retention loop removed the run's log lines (runlog.Prune).
	LogsPrunedAt *time.Time
	CreatedAt    time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
	UpdatedAt    time.Time
}

// TableName tells GORM the table.
func (Run) TableName() string { return "runs" }

// Request inserts r as a new requested run and writes its RunRequested event to the outbox,
// inside tx. It fills in ID, Status and the timestamps.
func Request(tx *gorm.DB, r *Run) error {
	now := time.Now().UTC()
	r.ID = ids.New()
	r.Status = StatusRequested
	r.CreatedAt, r.UpdatedAt = now, now
	if err := tx.Create(r).Error; err != nil {
		return fmt.Errorf("insert run for project %s: %w", r.ProjectID, err)
	}
	msg, err := events.New(events.TopicRunRequested, r.ID, events.RunRequested{
		RunID: r.ID, ProjectID: r.ProjectID, Ref: r.Ref, Trigger: r.Trigger,
	})
	if err != nil {
		return err
	}
	return outbox.Add(tx, msg)
}

// Get loads one run.
func Get(tx *gorm.DB, id string) (Run, error) {
	var r Run
	err := tx.Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, apperr.NotFound("run %s not found", id)
	}
	if err != nil {
		return r, fmt.Errorf("load run %s: %w", id, err)
	}
	return r, nil
}

// Change is one guarded transition of a run.
type Change struct {
	From  []Status       // the run must be in one of these
	To    Status         // and moves to this
	Token int64          // when non-zero, the run's lock_token must equal it (fencing)
	Set   map[string]any // further columns to set
}

// Advance applies c to run id inside tx and writes msgs to the outbox. A run that is not in
// one of c.From, or whose fencing token differs, is a conflict and nothing is written.
func Advance(tx *gorm.DB, id string, c Change, msgs ...bus.Message) error {
	set := map[string]any{"status": c.To, "updated_at": time.Now().UTC()}
	for k, v := range c.Set {
		set[k] = v
	}
	q := tx.Model(&Run{}).Where("id = ? AND status IN ?", id, c.From)
	if c.Token != 0 {
		q = q.Where("lock_token = ?", c.Token)
	}
	res := q.Updates(set)
	if res.Error != nil {
		return fmt.Errorf("move run %s to %s: %w", id, c.To, res.Error)
	}
	if res.RowsAffected == 0 {
		return apperr.Conflict("run %s is not %v (or its lock moved on); cannot move it to %s", id, c.From, c.To)
	}
	return outbox.Add(tx, msgs...)
}

// Finish moves run r to a final status with errMsg (empty on success) and announces it with
// RunFinished. from and token guard the move as in Advance.
func Finish(tx *gorm.DB, r Run, from []Status, status Status, errMsg string, token int64) error {
	if !status.Final() {
		return fmt.Errorf("finish run %s: %s is not a final status", r.ID, status)
	}
	var body *events.ErrorBody
	if errMsg != "" {
		body = &events.ErrorBody{Code: string(apperr.CodeInternal), Message: errMsg}
	}
	msg, err := events.New(events.TopicRunFinished, r.ID, events.RunFinished{
		RunID: r.ID, ProjectID: r.ProjectID, Status: string(status), Error: body,
	})
	if err != nil {
		return err
	}
	set := map[string]any{"finished_at": time.Now().UTC(), "error": errMsg}
	if status == StatusSucceeded {
		set["progress"] = 100
	}
	return Advance(tx, r.ID, Change{From: from, To: status, Token: token, Set: set}, msg)
}

// Heartbeat records that the worker holding run id with token is alive, and its progress
// (a negative progress leaves it as it is). It reports false when the run is no longer
// active under that token, or a cancel was requested (CancelRequest): the worker must stop.
func Heartbeat(tx *gorm.DB, id string, token int64, progress int) (bool, error) {
	now := time.Now().UTC()
	set := map[string]any{"heartbeat_at": now, "updated_at": now}
	if progress >= 0 {
		set["progress"] = progress
	}
	res := tx.Model(&Run{}).
		Where("id = ? AND status IN ? AND lock_token = ? AND cancel_requested_at IS NULL", id, Active, token).
		Updates(set)
	if res.Error != nil {
		return false, fmt.Errorf("heartbeat run %s: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Stale lists active runs whose last heartbeat is older than cutoff: their worker is gone.
func Stale(tx *gorm.DB, cutoff time.Time) ([]Run, error) {
	var rs []Run
	err := tx.Where("status IN ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)", Active, cutoff).
		Find(&rs).Error
	if err != nil {
		return nil, fmt.Errorf("list stale runs: %w", err)
	}
	return rs, nil
}

// CancelRequest marks active run id as to be cancelled by user; its worker stops at its
// next heartbeat. A run that is not active is a conflict.
func CancelRequest(tx *gorm.DB, id, user string) error {
	now := time.Now().UTC()
	res := tx.Model(&Run{}).Where("id = ? AND status IN ?", id, Active).
		Updates(map[string]any{"cancel_requested_at": now, "cancel_requested_by": user, "updated_at": now})
	if res.Error != nil {
		return fmt.Errorf("request cancel of run %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return apperr.Conflict("run %s is not building or deploying; cannot request its cancel", id)
	}
	return nil
}

// CancelRequested reports whether a cancel of run id was requested, and by whom.
func CancelRequested(tx *gorm.DB, id string) (string, bool, error) {
	r, err := Get(tx, id)
	if err != nil {
		return "", false, err
	}
	return r.CancelRequestedBy, r.CancelRequestedAt != nil, nil
}
