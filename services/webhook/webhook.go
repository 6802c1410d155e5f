// Package webhook is fabu's webhook service: it receives deliveries from the git platforms,
// verifies them before reading them, records every delivery with its verdict and requests
// a run when a push matches a project's trigger.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// Config configures the webhook service.
type Config struct {
	MaxBody int64 // largest delivery accepted; default 5 MiB
	// BodyTimeout is how long a delivery's body has to arrive, counted from when its headers
	// have; default 20s (the platforms give up on a delivery after 10s).
	BodyTimeout time.Duration
	// Retention is how long delivery rows and rejection counts are kept (0: forever);
	// RetentionEvery how often old ones are deleted (default 1h).
	Retention      time.Duration
	RetentionEvery time.Duration
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.MaxBody == 0 {
		c.MaxBody = 5 << 20
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 20 * time.Second
	}
	if c.BodyTimeout < 0 {
		return fmt.Errorf("webhook: body timeout %s is negative", c.BodyTimeout)
	}
	if c.Retention < 0 {
		return fmt.Errorf("webhook: delivery retention %s is negative", c.Retention)
	}
	if c.MaxBody < 1<<10 {
		return fmt.Errorf("webhook: max body %d is too small", c.MaxBody)
	}
	return nil
}

// Service is the webhook service.
type Service struct {
	cfg       Config
	db        *store.DB
	secrets   *secret.Keyring
	verifiers map[forge.Platform]forge.Verifier
	log       *slog.Logger
	kick      func() // wakes the outbox relay after a commit
	now       func() time.Time
}

// New returns the webhook service, reading deliveries of the platforms verifiers cover.
// kick, if not nil, is called after a run was requested.
func New(cfg Config, db *store.DB, secrets *secret.Keyring, verifiers []forge.Verifier, log *slog.Logger, kick func()) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if secrets == nil {
		return nil, errors.New("webhook: a secrets keyring is required")
	}
	if kick == nil {
		kick = func() {}
	}
	vs := map[forge.Platform]forge.Verifier{}
	for _, v := range verifiers {
		vs[v.Platform()] = v
	}
	return &Service{cfg: cfg, db: db, secrets: secrets, verifiers: vs, log: log, kick: kick, now: time.Now}, nil
}

// Routes mounts the hook endpoint on r: POST /hooks/<platform>/<project name>, and the
// projects' trigger URLs.
func (s *Service) Routes(r gin.IRouter) {
	r.POST("/hooks/:platform/:project", s.receive)
	s.triggerRoutes(r) // POST /trigger/<token>, POST /trigger with a bearer token (trigger.go)
}

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}}
}

// Run deletes deliveries and rejection counts older than Config.Retention until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Retention > 0 {
		s.runRetention(ctx)
	}
	<-ctx.Done()
	return nil
}

// project is what the webhook service reads of a project.
type project struct {
	ID                  string
	Name                string
	Platform            string
	Branch              string
	WebhookSecretSealed string
	WebhookMode         string // "" for the platform's default (forge.ModeVerifier)
	TriggerBranches     string
	TriggerTags         string
	TriggerKeyword      string
	TriggerKeywordScope string
}

func (project) TableName() string { return "projects" }

// Delivery is one received webhook delivery and what fabu made of it.
type Delivery struct {
	ID          string `gorm:"primaryKey"`
	Platform    string
	Event       string
	ProjectID   *string
	Verdict     string
	Reason      string
	DeliveryKey string
	RunID       string
	Ref         string
	CommitSHA   string `gorm:"column:commit_sha"`
	// BodySHA256 is the hex SHA-256 of a verified delivery's body; "" for an unverified
	// one and for one refused without acting, so that its retry is not a repost.
	BodySHA256 string `gorm:"column:body_sha256"`
	ReceivedAt time.Time
	// bodySigned: the platform signs the body, so a body seen before is a repost.
	bodySigned bool
}

// TableName tells GORM the table.
func (Delivery) TableName() string { return "webhook_deliveries" }

// Verdicts of a delivery.
const (
	VerdictTriggered = "triggered"
	VerdictIgnored   = "ignored"
	VerdictRejected  = "rejected"
	VerdictDuplicate = "duplicate"
)

var projectName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// verdict is the outcome of a delivery: the HTTP answer and the record.
type verdict struct {
	status  int
	verdict string
	code    string // a refusal's reason as webhook_rejections counts it (Reject*)
	reason  string
	runID   string
}

func (s *Service) respond(c *gin.Context, d *Delivery, v verdict) {
	d.Verdict, d.Reason, d.RunID = v.verdict, truncate(v.reason, 500), v.runID
	// Not yet recorded in the run's transaction. Refusals are counted, and only a sample of
	// the unverified ones recorded: their senders must not be able to fill the database. A
	// verified delivery (it has a body hash) is always recorded: its key and body are what
	// tells a later replay or repost of it.
	keep := v.verdict != VerdictRejected
	if !keep {
		keep = s.countRejection(c.Request.Context(), d, v.code) || d.BodySHA256 != ""
	}
	if d.ID == "" && keep {
		d.ID = ids.New()
		if err := s.db.WithContext(c.Request.Context()).Create(d).Error; err != nil {
			s.log.Error("record webhook delivery", "err", err)
		}
	}
	if v.status >= 400 {
		// The body may not have been read (or not all of it): closing the connection
		// answers at once instead of first reading what remains of it.
		c.Header("Connection", "close")
	}
	body := gin.H{"verdict": v.verdict, "reason": d.Reason}
	if v.runID != "" {
		body["run_id"] = v.runID
	}
	if v.status >= 400 {
		body = gin.H{"code": codeFor(v.status), "message": d.Reason}
	}
	c.JSON(v.status, body)
}

func codeFor(status int) apperr.Code {
	switch status {
	case http.StatusUnauthorized:
		return apperr.CodeUnauthorized
	case http.StatusNotFound:
		return apperr.CodeNotFound
	case http.StatusServiceUnavailable:
		return apperr.CodeUnavailable
	case http.StatusInternalServerError:
		return apperr.CodeInternal
	default:
		return apperr.CodeInvalid
	}
}

// limitBodyTime gives the request's body BodyTimeout to arrive, counted from the start of
// the handler: whether the handler reads the body or refuses the delivery first, a sender
// trickling it cannot hold the connection longer.
func (s *Service) limitBodyTime(c *gin.Context) {
	if err := httpx.LimitBodyTime(c.Writer, c.Request, s.cfg.BodyTimeout); err != nil {
		s.log.Warn("request body read without a deadline", "path", httpx.LogPath(c.Request.URL.Path), "err", err)
	}
}

// readBody reads at most limit bytes of the body; a longer body is an error.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

var errTooLarge = errors.New("body too large")

func (s *Service) findProject(ctx context.Context, name string) (project, error) {
	var p project
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, apperr.NotFound("no project %q", name)
	}
	return p, err
}

// request inserts run r and records d as triggering it, in one transaction. A delivery
// whose key already triggered a run of its project (or, for a platform that signs the body,
// whose body did) is a duplicate and starts nothing: the lookup answers the common
// redelivery, and the unique indexes on triggering keys and signed bodies settle two copies
// that arrive at the same moment (the second insert fails and its run rolls back). Keys are
// per project: one event reaching several projects' hooks under one delivery id deploys
// each of them.
func (s *Service) request(ctx context.Context, d *Delivery, r *runs.Run) error {
	if err := s.pinForTicket(ctx, r); err != nil { // a ticket pins a commit (approval.go)
		return err
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if dup, err := triggeredBefore(tx, d); err != nil {
			return err
		} else if dup {
			return errDuplicate
		}
		d.ID = ids.New()
		// A project whose environment rules need approval gets a pending ticket instead of a
		// run (approval.go).
		ticket, err := s.openTicketInstead(tx, d, r)
		if err != nil {
			return err
		}
		if !ticket {
			if err := runs.Request(tx, r); err != nil {
				return err
			}
			d.Verdict, d.RunID = VerdictTriggered, r.ID
		}
		if err := tx.Create(d).Error; err != nil {
			if store.IsUniqueViolation(err) {
				return errDuplicate
			}
			return fmt.Errorf("record delivery: %w", err)
		}
		return nil
	})
	if err == nil {
		s.kick()
	}
	return err
}

var errDuplicate = errors.New("duplicate delivery")

// triggeredBefore reports whether a delivery to d's project with d's key, or with d's
// signed body, already triggered a run or opened a ticket.
func triggeredBefore(tx *gorm.DB, d *Delivery) (bool, error) {
	if d.ProjectID == nil || (d.DeliveryKey == "" && (!d.bodySigned || d.BodySHA256 == "")) {
		return false, nil
	}
	same := tx.Where("platform = ? AND delivery_key = ? AND delivery_key <> ''", d.Platform, d.DeliveryKey)
	if d.bodySigned && d.BodySHA256 != "" {
		same = same.Or("platform = ? AND body_sha256 = ?", d.Platform, d.BodySHA256)
	}
	var n int64
	err := tx.Model(&Delivery{}).Where("project_id = ? AND verdict IN ?", *d.ProjectID, []string{VerdictTriggered, VerdictTicket}).
		Where(same).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("look up delivery key: %w", err)
	}
	return n > 0, nil
}

// truncate cuts s to n bytes and makes it valid UTF-8 for storage and display.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
