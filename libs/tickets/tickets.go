// Package tickets is the release ticket record and its state machine, and a project's
// environment rules (approval policy and deploy windows), shared by the services that open
// tickets: the gateway (people, and the loop that starts approved tickets) and the webhook
// service (pushes and trigger URLs on a project that needs approval). Like package runs it
// is the table's contract, not a service's rules about people: who may approve is decided
// by the gateway, which knows roles.
//
// Every transition is one guarded row update plus a TicketChanged event in the outbox, in the
// caller's transaction. A ticket starts its run at most once: Start claims it with a
// conditional UPDATE (approved → started) and requests the run in the same transaction, so
// of several gateways claiming it one wins and the others change nothing.
package tickets

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/bus/outbox"
	"fabu.dev/libs/events"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runs"
)

// Status is where a ticket is in its life.
type Status string

// A ticket's statuses.
const (
	StatusPending   Status = "pending"   // waiting for approvals
	StatusApproved  Status = "approved"  // enough approvals; waiting for its scheduled time
	StatusStarted   Status = "started"   // its run was requested (RunID)
	StatusRejected  Status = "rejected"  // an approver refused it
	StatusCancelled Status = "cancelled" // its requester withdrew it
	StatusExpired   Status = "expired"   // not started before ExpiresAt
)

// Final reports whether s is an end state.
func (s Status) Final() bool { return s != StatusPending && s != StatusApproved }

// Sources: who opened a ticket.
const (
	SourceUser     = "user"     // a person through the API or the SPA
	SourceWebhook  = "webhook"  // a push delivery
	SourceLink     = "link"     // a trigger URL
	SourceSchedule = "schedule" // a schedule
)

// TriggerTicket is the trigger of runs a ticket starts.
const TriggerTicket = "ticket"

// Ticket is a request to deploy one pinned commit, as stored in release_tickets.
type Ticket struct {
	ID              string `gorm:"primaryKey"`
	ProjectID       string
	Ref             string
	CommitSHA       string `gorm:"column:commit_sha"`
	Title           string
	Description     string
	Status          Status
	Source          string
	RequestedBy     string // user name, pusher, or "trigger URL"
	RequesterID     string // user id; "" when opened by the system
	ApprovalsNeeded int
	ScheduledAt     *time.Time
	ExpiresAt       time.Time
	RunID           string
	DeliveryID      string
	DecidedAt       *time.Time
	StartedAt       *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName tells GORM the table.
func (Ticket) TableName() string { return "release_tickets" }

// Review is one reviewer's decision on a ticket.
type Review struct {
	ID         string `gorm:"primaryKey"`
	TicketID   string
	ReviewerID string
	Reviewer   string
	Decision   string // "approve" or "reject"
	Comment    string
	CreatedAt  time.Time
}

// TableName tells GORM the table.
func (Review) TableName() string { return "release_ticket_reviews" }

// Decisions of a review.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Open inserts t as a new pending ticket, inside tx, and announces it. It fills ID, Status
// and the timestamps; ExpiresAt must be set, and CommitSHA must be a full commit id: the
// approvers approve exactly that commit.
func Open(tx *gorm.DB, t *Ticket, now time.Time) error {
	if t.CommitSHA == "" || t.ExpiresAt.IsZero() {
		return errors.New("tickets: a ticket needs a pinned commit and an expiry")
	}
	now = now.UTC()
	t.ID, t.Status, t.CreatedAt, t.UpdatedAt = ids.New(), StatusPending, now, now
	t.CommitSHA = strings.ToLower(t.CommitSHA)
	if err := tx.Create(t).Error; err != nil {
		return fmt.Errorf("insert ticket for project %s: %w", t.ProjectID, err)
	}
	return announce(tx, *t, t.RequestedBy, "", 0)
}

// Get loads one ticket.
func Get(tx *gorm.DB, id string) (Ticket, error) {
	var t Ticket
	err := tx.Where("id = ?", id).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return t, apperr.NotFound("ticket %s not found", id)
	}
	if err != nil {
		return t, fmt.Errorf("load ticket %s: %w", id, err)
	}
	return t, nil
}

// Lock takes ticket id for the rest of tx when it is in one of from: a conditional UPDATE
// that holds the row (PostgreSQL) or the database (SQLite) until tx ends, so two reviewers
// deciding at once are counted one after the other. A ticket not in from is a conflict.
func Lock(tx *gorm.DB, id string, from []Status, now time.Time) (Ticket, error) {
	res := tx.Model(&Ticket{}).Where("id = ? AND status IN ?", id, from).Update("updated_at", now.UTC())
	if res.Error != nil {
		return Ticket{}, fmt.Errorf("lock ticket %s: %w", id, res.Error)
	}
	t, err := Get(tx, id)
	if err != nil {
		return t, err
	}
	if res.RowsAffected == 0 {
		return t, apperr.Conflict("ticket %s is %s", id, t.Status)
	}
	return t, nil
}

// Change moves ticket t from one of from to status to, setting set as well, and announces
// it with actor and comment. A ticket no longer in from is a conflict and nothing changes.
func Change(tx *gorm.DB, t Ticket, from []Status, to Status, actor, comment string, set map[string]any, now time.Time) error {
	cols := map[string]any{"status": to, "updated_at": now.UTC()}
	for k, v := range set {
		cols[k] = v
	}
	res := tx.Model(&Ticket{}).Where("id = ? AND status IN ?", t.ID, from).Updates(cols)
	if res.Error != nil {
		return fmt.Errorf("move ticket %s to %s: %w", t.ID, to, res.Error)
	}
	if res.RowsAffected == 0 {
		return apperr.Conflict("ticket %s is no longer %v; cannot make it %s", t.ID, from, to)
	}
	t.Status = to
	if id, ok := set["run_id"].(string); ok {
		t.RunID = id
	}
	n, err := Approvals(tx, t.ID)
	if err != nil {
		return err
	}
	return announce(tx, t, actor, comment, n)
}

// Approvals counts the approvals of ticket id.
func Approvals(tx *gorm.DB, id string) (int, error) {
	var n int64
	if err := tx.Model(&Review{}).Where("ticket_id = ? AND decision = ?", id, DecisionApprove).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count approvals of ticket %s: %w", id, err)
	}
	return int(n), nil
}

func announce(tx *gorm.DB, t Ticket, actor, comment string, approvals int) error {
	msg, err := events.New(events.TopicTicketChanged, t.ID, events.TicketChanged{
		TicketID: t.ID, ProjectID: t.ProjectID, Status: string(t.Status), Actor: actor, RequestedBy: t.RequestedBy,
		Title: t.Title, Ref: t.Ref, Commit: t.CommitSHA, Approvals: approvals, Needed: t.ApprovalsNeeded,
		Comment: comment, RunID: t.RunID,
	})
	if err != nil {
		return err
	}
	return outbox.Add(tx, msg)
}

// Start claims approved ticket id when it is due (no scheduled time, or one that has come)
// and not expired, requests its run — the pinned commit, trigger "ticket", triggered by the
// requester — and marks it started, all in tx. It reports false, changing nothing, when the
// ticket is not approved (another gateway started it, or it was never approved), not yet
// due or expired.
func Start(tx *gorm.DB, id, actor string, now time.Time) (Ticket, runs.Run, bool, error) {
	now = now.UTC()
	res := tx.Model(&Ticket{}).
		Where("id = ? AND status = ? AND expires_at > ? AND (scheduled_at IS NULL OR scheduled_at <= ?)", id, StatusApproved, now, now).
		Updates(map[string]any{"status": StatusStarted, "started_at": now, "updated_at": now})
	if res.Error != nil {
		return Ticket{}, runs.Run{}, false, fmt.Errorf("claim ticket %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return Ticket{}, runs.Run{}, false, nil
	}
	t, err := Get(tx, id)
	if err != nil {
		return t, runs.Run{}, false, err
	}
	r := runs.Run{ProjectID: t.ProjectID, Ref: t.Ref, CommitSHA: t.CommitSHA, Trigger: TriggerTicket, TriggeredBy: t.RequestedBy}
	if err := runs.Request(tx, &r); err != nil {
		return t, r, false, err
	}
	if err := tx.Model(&Ticket{}).Where("id = ?", id).Update("run_id", r.ID).Error; err != nil {
		return t, r, false, fmt.Errorf("link ticket %s to run %s: %w", id, r.ID, err)
	}
	t.RunID = r.ID
	n, err := Approvals(tx, id)
	if err != nil {
		return t, r, false, err
	}
	return t, r, true, announce(tx, t, actor, "", n)
}

// Due lists the ids of approved tickets whose time has come and that have not expired.
func Due(tx *gorm.DB, now time.Time, limit int) ([]string, error) {
	var out []string
	now = now.UTC()
	err := tx.Model(&Ticket{}).Where("status = ? AND expires_at > ? AND (scheduled_at IS NULL OR scheduled_at <= ?)", StatusApproved, now, now).
		Order("created_at").Limit(limit).Pluck("id", &out).Error
	if err != nil {
		return nil, fmt.Errorf("list due tickets: %w", err)
	}
	return out, nil
}

// Expire moves every pending or approved ticket whose expiry has passed to expired, one
// guarded update each, and returns them.
func Expire(tx *gorm.DB, now time.Time, limit int) ([]Ticket, error) {
	now = now.UTC()
	var ts []Ticket
	if err := tx.Where("status IN ? AND expires_at <= ?", []Status{StatusPending, StatusApproved}, now).Limit(limit).Find(&ts).Error; err != nil {
		return nil, fmt.Errorf("list expired tickets: %w", err)
	}
	var out []Ticket
	for _, t := range ts {
		err := Change(tx, t, []Status{StatusPending, StatusApproved}, StatusExpired, "system", "not started before "+t.ExpiresAt.UTC().Format(time.RFC3339), nil, now)
		if apperr.Is(err, apperr.CodeConflict) {
			continue // decided meanwhile
		}
		if err != nil {
			return out, err
		}
		t.Status = StatusExpired
		out = append(out, t)
	}
	return out, nil
}
