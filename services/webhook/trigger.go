package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/runs"
)

// PlatformTrigger is the platform recorded for deliveries to a project's trigger URL.
const PlatformTrigger = "trigger"

// TriggerRun is the trigger of runs requested through a trigger URL.
const TriggerRun = "link"

// triggerToken is the form of a trigger token: 32 random bytes, base64url without padding.
// Anything else cannot be a token, so it is refused before the database is asked.
var triggerToken = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// maxTriggerBody bounds the optional {ref} body of a trigger request.
const maxTriggerBody = 4 << 10

// triggerRoutes mounts a project's CI trigger URL: POST /trigger/<token>, or POST /trigger
// with "Authorization: Bearer <token>". The token is in the path because many CI tools cannot
// set headers. Other methods answer 405 without looking at the token, so link prefetchers,
// chat unfurlers and crawlers that GET the URL never deploy.
func (s *Service) triggerRoutes(r gin.IRouter) {
	r.POST("/trigger/:token", s.trigger)
	r.POST("/trigger", s.trigger)
	for _, p := range []string{"/trigger", "/trigger/:token"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			r.Handle(m, p, triggerMethodNotAllowed)
		}
	}
}

func triggerMethodNotAllowed(c *gin.Context) {
	c.Header("Allow", http.MethodPost)
	c.JSON(http.StatusMethodNotAllowed, gin.H{"code": apperr.CodeInvalid,
		"message": "a trigger URL deploys only on POST; opening it never starts anything"})
}

// triggerProject is what the trigger endpoint reads of a project.
type triggerProject struct {
	ID                    string
	Name                  string
	Branch                string
	TriggerTokenHash      string
	TriggerTokenCreatedBy string // the URL acts with this user's rights (trigger_access.go)
}

func (triggerProject) TableName() string { return "projects" }

type triggerRequest struct {
	Ref string `json:"ref"`
}

// trigger handles POST /trigger/:token and POST /trigger. It finds the project whose
// trigger token it is given, checks that the user who made the token may still deploy the
// project (trigger_access.go), reads an optional {"ref": …} (default: the project's branch)
// and requests a run. Every outcome is recorded as a delivery of platform "trigger".
func (s *Service) trigger(c *gin.Context) {
	s.limitBodyTime(c)
	d := &Delivery{Platform: PlatformTrigger, Event: "trigger", ReceivedAt: s.now().UTC()}
	token := c.Param("token")
	if token == "" {
		if raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer "); ok {
			token = raw
		}
	}
	p, err := s.projectByTriggerToken(c.Request.Context(), token)
	switch {
	case apperr.Is(err, apperr.CodeUnauthorized):
		_, msg := apperr.Public(err)
		s.respond(c, d, verdict{status: http.StatusUnauthorized, verdict: VerdictRejected, code: RejectToken, reason: msg})
		return
	case err != nil:
		s.log.Error("look up trigger token", "err", err)
		s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "database unavailable"})
		return
	}
	d.ProjectID = &p.ID
	if err := s.creatorMayDeploy(c.Request.Context(), p.ID, p.TriggerTokenCreatedBy); err != nil {
		code, msg := apperr.Public(err)
		if code == apperr.CodeInternal {
			s.log.Error("check trigger URL creator", "project", p.Name, "err", err)
			s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, reason: "database unavailable"})
			return
		}
		s.auditTrigger(c, p, audit.Refused, map[string]any{"reason": msg, "created_by": p.TriggerTokenCreatedBy})
		s.respond(c, d, verdict{status: apperr.HTTPStatus(code), verdict: VerdictRejected, reason: msg})
		return
	}
	req, err := readTriggerRequest(c.Request)
	if err != nil {
		_, msg := apperr.Public(err)
		s.respond(c, d, verdict{status: http.StatusBadRequest, verdict: VerdictRejected, code: RejectRequest, reason: msg})
		return
	}
	ref, why := req.Ref, "trigger URL called with ref "+fmt.Sprintf("%q", req.Ref)
	if ref == "" {
		ref, why = p.Branch, fmt.Sprintf("trigger URL called; deploying the project's branch %q", p.Branch)
	}
	if gitref.Valid(ref) != nil && gitref.ValidCommit(ref) != nil {
		reason := fmt.Sprintf("ref %q is neither a valid branch or tag name nor a commit id", truncate(ref, 200))
		s.auditTrigger(c, p, audit.Refused, map[string]any{"ref": truncate(ref, 200), "reason": reason})
		s.respond(c, d, verdict{status: http.StatusBadRequest, verdict: VerdictRejected, code: RejectRef, reason: reason})
		return
	}
	d.Ref, d.Reason = ref, why
	r := &runs.Run{ProjectID: p.ID, Ref: ref, Trigger: TriggerRun, TriggeredBy: "trigger URL"}
	if err := s.request(c.Request.Context(), d, r); apperr.Is(err, apperr.CodeInvalid) || apperr.Is(err, apperr.CodeNotFound) {
		_, msg := apperr.Public(err) // the project needs a ticket, which pins a commit the ref does not give (approval.go)
		s.auditTrigger(c, p, audit.Refused, map[string]any{"ref": ref, "reason": msg})
		d.ID = ""
		s.respond(c, d, verdict{status: apperr.HTTPStatus(apperr.CodeOf(err)), verdict: VerdictRejected, code: RejectRequest, reason: msg})
		return
	} else if err != nil {
		s.log.Error("request run from trigger URL", "project", p.Name, "err", err)
		s.auditTrigger(c, p, audit.Failed, map[string]any{"ref": ref, "reason": "could not record the run"})
		d.ID = ""
		s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "could not record the run; retry"})
		return
	}
	if d.Verdict == VerdictTicket { // the project needs approval: a ticket, not a run (approval.go)
		s.respond(c, d, s.ticketVerdict(c, d, "trigger URL", "trigger-url"))
		return
	}
	s.auditTrigger(c, p, audit.OK, map[string]any{"ref": ref, "run_id": r.ID, "delivery_id": d.ID})
	s.respond(c, d, verdict{status: http.StatusAccepted, verdict: VerdictTriggered, reason: why, runID: r.ID})
}

// auditTrigger records a run requested (or refused) through project p's trigger URL. The
// actor is the trigger URL — whoever holds its token — never the token itself. Calls with
// an unknown token are not audited here: they touch no project, and the delivery log
// already keeps them.
func (s *Service) auditTrigger(c *gin.Context, p triggerProject, outcome string, detail map[string]any) {
	detail["project"] = p.Name
	detail["trigger"] = TriggerRun
	if xff := c.Request.Header.Get("X-Forwarded-For"); xff != "" {
		detail["forwarded_for"] = xff
	}
	e := audit.Entry{At: s.now(), Actor: "trigger URL", ActorID: "trigger-url", Action: "run.start", Target: "project",
		TargetID: p.ID, Outcome: outcome, IP: c.RemoteIP(), UserAgent: c.Request.UserAgent(), Detail: detail}
	if err := audit.Record(s.db.WithContext(context.WithoutCancel(c.Request.Context())), e); err != nil {
		s.log.Error("audit log: entry not recorded", "action", e.Action, "project", p.Name, "err", err)
	}
}

// projectByTriggerToken finds the project whose trigger token is token. Only the token's
// SHA-256 is stored, and the project is looked up by it: a lookup's timing can tell at most
// something about a hash, which does not help to find a token. The stored hash is still
// compared in constant time, so the decision itself never depends on where bytes differ.
func (s *Service) projectByTriggerToken(ctx context.Context, token string) (triggerProject, error) {
	var p triggerProject
	if token == "" {
		return p, apperr.Unauthorized("no trigger token: POST /trigger/<token>, or POST /trigger with Authorization: Bearer <token>")
	}
	if !triggerToken.MatchString(token) {
		return p, apperr.Unauthorized("invalid trigger token (wrong, revoked or replaced by a newer one)")
	}
	sum := sha256.Sum256([]byte(token))
	hash := hex.EncodeToString(sum[:])
	err := s.db.WithContext(ctx).Where("trigger_token_hash = ?", hash).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) ||
		(err == nil && subtle.ConstantTimeCompare([]byte(p.TriggerTokenHash), []byte(hash)) != 1) {
		return triggerProject{}, apperr.Unauthorized("invalid trigger token (wrong, revoked or replaced by a newer one)")
	}
	if err != nil {
		return triggerProject{}, fmt.Errorf("look up trigger token: %w", err)
	}
	return p, nil
}

// readTriggerRequest reads the optional JSON body {"ref": "…"}. An empty body, or one of
// only white space, asks for the project's branch.
func readTriggerRequest(r *http.Request) (triggerRequest, error) {
	var req triggerRequest
	b, err := readBody(r, maxTriggerBody)
	if errors.Is(err, errTooLarge) {
		return req, apperr.Invalid("body larger than %d bytes; send at most {\"ref\": \"…\"}", maxTriggerBody)
	}
	if err != nil {
		return req, apperr.Invalid("read body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, apperr.Invalid("body must be empty or a JSON object {\"ref\": \"…\"}: %v", err)
	}
	if dec.More() {
		return req, apperr.Invalid("body must be one JSON object {\"ref\": \"…\"}")
	}
	return req, nil
}
