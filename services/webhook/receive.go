package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/httpx"
)

// eventHeaders name the header each platform puts its event name in, recorded even for
// deliveries that are refused before they are parsed.
var eventHeaders = map[forge.Platform]string{
	forge.GitLab: "X-Gitlab-Event",
	forge.GitHub: "X-GitHub-Event",
	forge.Gitee:  "X-Gitee-Event",
}

// secretPlace is where the gateway seals a project's webhook secret (gateway.SecretPlace).
func secretPlace(projectID string) string { return "projects/" + projectID + "/webhook_secret" }

// receive handles POST /hooks/:platform/:project. The delivery is verified with the
// project's secret before its body is parsed (before it is read, where the platform puts the
// proof in a header), the body has BodyTimeout to arrive, and every outcome is recorded
// with the reason.
func (s *Service) receive(c *gin.Context) {
	s.limitBodyTime(c)
	platform := forge.Platform(c.Param("platform"))
	d := &Delivery{Platform: truncate(string(platform), 20), ReceivedAt: s.now().UTC()}
	v, ok := s.verifiers[platform]
	if !ok {
		s.respond(c, d, verdict{status: http.StatusNotFound, verdict: VerdictRejected, code: RejectPlatform, reason: "unknown platform"})
		return
	}
	d.Event = truncate(c.GetHeader(eventHeaders[platform]), 100)
	name := c.Param("project")
	if !projectName.MatchString(name) {
		s.respond(c, d, verdict{status: http.StatusNotFound, verdict: VerdictRejected, code: RejectNoProject, reason: "no such project"})
		return
	}
	p, err := s.findProject(c.Request.Context(), name)
	if err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			s.respond(c, d, verdict{status: http.StatusNotFound, verdict: VerdictRejected, code: RejectNoProject, reason: "no such project"})
			return
		}
		s.log.Error("look up project", "project", name, "err", err)
		s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "database unavailable"})
		return
	}
	d.ProjectID = &p.ID
	if p.Platform != string(platform) {
		s.respond(c, d, verdict{status: http.StatusNotFound, verdict: VerdictRejected, code: RejectWrongPlatform,
			reason: fmt.Sprintf("project %s takes deliveries from %s, not %s", p.Name, p.Platform, platform)})
		return
	}
	if c.Request.ContentLength > s.cfg.MaxBody { // announced too large: not worth reading
		s.respond(c, d, verdict{status: http.StatusRequestEntityTooLarge, verdict: VerdictRejected, code: RejectTooLarge,
			reason: fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody)})
		httpx.Linger(c.Writer, c.Request, lingerMax, lingerTime)
		return
	}
	if p.WebhookSecretSealed == "" {
		s.respond(c, d, verdict{status: http.StatusUnauthorized, verdict: VerdictRejected, code: RejectNoSecret,
			reason: "project has no webhook secret; set one to accept deliveries"})
		return
	}
	plain, err := s.secrets.Open(p.WebhookSecretSealed, secretPlace(p.ID))
	if err != nil {
		s.log.Error("open webhook secret", "project", p.Name, "err", err)
		s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable,
			reason: "the project's webhook secret cannot be opened with the configured master key"})
		return
	}
	if p.WebhookMode != "" {
		mv, ok := v.(forge.ModeVerifier)
		if !ok {
			s.respond(c, d, verdict{status: http.StatusUnauthorized, verdict: VerdictRejected, code: RejectMode,
				reason: fmt.Sprintf("project's webhook mode %q is not one %s hooks have", truncate(p.WebhookMode, 40), platform)})
			return
		}
		if v, err = mv.WithMode(p.WebhookMode); err != nil {
			_, msg := apperr.Public(err)
			s.respond(c, d, verdict{status: http.StatusUnauthorized, verdict: VerdictRejected, code: RejectMode, reason: msg})
			return
		}
	}
	// A proof in the headers (GitLab, Gitee) is checked before a byte of the body is read;
	// GitHub signs the body, which must then be read, within the body limits, to verify.
	hv, headerProof := v.(forge.HeaderVerifier)
	if headerProof {
		if err := hv.VerifyHeaders(c.Request.Header, string(plain), s.now()); err != nil {
			s.respond(c, d, signatureVerdict(err))
			return
		}
	}
	body, ok := s.readDelivery(c, d)
	if !ok {
		return
	}
	if !headerProof {
		if err := v.Verify(c.Request.Header, body, string(plain), s.now()); err != nil {
			s.respond(c, d, signatureVerdict(err))
			return
		}
	}
	sum := sha256.Sum256(body) // verified from here on: such deliveries are always recorded
	d.BodySHA256 = hex.EncodeToString(sum[:])
	dl, err := v.Parse(c.Request.Header, body)
	if err != nil {
		_, msg := apperr.Public(err)
		s.respond(c, d, verdict{status: http.StatusBadRequest, verdict: VerdictRejected, code: RejectUnreadable, reason: "unreadable delivery: " + msg})
		return
	}
	d.Event, d.DeliveryKey = truncate(dl.Event, 100), truncate(dl.Key, 200)
	d.bodySigned = dl.BodySigned
	if dl.BodyUnsigned && d.DeliveryKey != "" {
		// The proof covers the headers only: signed headers seen before, on any delivery,
		// may now carry another body. Whatever the first one did, this one does nothing.
		seen, err := s.keySeen(c.Request.Context(), d)
		if err != nil {
			s.log.Error("look up delivery key", "project", p.Name, "err", err)
			d.DeliveryKey, d.BodySHA256 = "", "" // refused without acting: a retry must not look like a replay
			s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "database unavailable"})
			return
		}
		if seen {
			s.respond(c, d, verdict{status: http.StatusOK, verdict: VerdictDuplicate,
				reason: fmt.Sprintf("these signed headers came before; %s does not sign the body, so a redelivery or a replay starts nothing", platform)})
			return
		}
	}
	switch dl.Kind {
	case forge.EventPing:
		s.respond(c, d, verdict{status: http.StatusOK, verdict: VerdictIgnored, reason: "ping: the hook reaches fabu"})
		return
	case forge.EventPush:
	default:
		s.respond(c, d, verdict{status: http.StatusAccepted, verdict: VerdictIgnored,
			reason: fmt.Sprintf("event %q does not deploy", d.Event)})
		return
	}
	d.Ref, d.CommitSHA = truncate(dl.Push.Ref, 255), truncate(dl.Push.After, 64)
	if dl.BodySigned {
		// A signed push body this project has seen under another delivery id is an old push
		// reposted: deployed then or not, it must not deploy an old commit now.
		seen, err := s.bodySeen(c.Request.Context(), d)
		if err != nil {
			s.log.Error("look up delivery body", "project", p.Name, "err", err)
			d.DeliveryKey, d.BodySHA256 = "", ""
			s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "database unavailable"})
			return
		}
		if seen {
			s.respond(c, d, verdict{status: http.StatusOK, verdict: VerdictDuplicate,
				reason: "this signed push came before under another delivery id; a repost starts nothing"})
			return
		}
	}
	dec := decide(p, dl.Push)
	if dec.run == nil {
		s.respond(c, d, dec.verdict)
		return
	}
	d.Reason = truncate(dec.reason, 500)
	switch err := s.request(c.Request.Context(), d, dec.run); {
	case errors.Is(err, errDuplicate):
		d.ID = ""
		s.respond(c, d, verdict{status: http.StatusOK, verdict: VerdictDuplicate, reason: "this delivery already triggered a run"})
	case err != nil:
		s.log.Error("request run from webhook", "project", p.Name, "err", err)
		d.ID, d.DeliveryKey, d.BodySHA256 = "", "", "" // nothing was done: the platform's retry must not be a duplicate
		s.respond(c, d, verdict{status: http.StatusServiceUnavailable, verdict: VerdictRejected, code: RejectUnavailable, reason: "could not record the run; retry"})
	case d.Verdict == VerdictTicket: // the project needs approval (approval.go)
		s.respond(c, d, s.ticketVerdict(c, d, dec.run.TriggeredBy, "webhook"))
	default:
		s.respond(c, d, verdict{status: http.StatusAccepted, verdict: VerdictTriggered, reason: dec.reason, runID: dec.run.ID})
	}
}

// signatureVerdict is the answer to a delivery whose proof of secret err refused.
func signatureVerdict(err error) verdict {
	code, reason := RejectSignature, "signature or token does not match the project's webhook secret"
	if errors.Is(err, forge.ErrStale) {
		code, reason = RejectStale, "signed timestamp is outside the accepted window (replay or clock skew)"
	}
	return verdict{status: http.StatusUnauthorized, verdict: VerdictRejected, code: code, reason: reason}
}

// After a 413, the rest of a body is read and dropped, up to lingerMax bytes or for
// lingerTime, so that the sender reads the answer (httpx.Linger).
const (
	lingerMax  = 64 << 20
	lingerTime = 2 * time.Second
)

// readDelivery reads the body of d's request within the size and time limits; when it
// cannot, it answers and reports false.
func (s *Service) readDelivery(c *gin.Context, d *Delivery) ([]byte, bool) {
	body, err := readBody(c.Request, s.cfg.MaxBody)
	switch {
	case err == nil:
		return body, true
	case errors.Is(err, errTooLarge):
		s.respond(c, d, verdict{status: http.StatusRequestEntityTooLarge, verdict: VerdictRejected, code: RejectTooLarge,
			reason: fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody)})
		httpx.Linger(c.Writer, c.Request, lingerMax, lingerTime)
	case httpx.BodyTimedOut(err):
		s.respond(c, d, verdict{status: http.StatusRequestTimeout, verdict: VerdictRejected, code: RejectBodyTimeout,
			reason: fmt.Sprintf("body not received within %s", s.cfg.BodyTimeout)})
	default:
		s.respond(c, d, verdict{status: http.StatusBadRequest, verdict: VerdictRejected, code: RejectUnreadable, reason: "body could not be read"})
	}
	return nil, false
}

// keySeen reports whether a delivery of d's platform with d's key was recorded before, to
// d's project or, with another body, to any project: the same event reaching two projects'
// hooks carries the same body, headers replayed to another project do not.
func (s *Service) keySeen(ctx context.Context, d *Delivery) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Delivery{}).Where("platform = ? AND delivery_key = ?", d.Platform, d.DeliveryKey).
		Where("project_id = ? OR body_sha256 <> ?", *d.ProjectID, d.BodySHA256).Count(&n).Error
	return n > 0, err
}

// bodySeen reports whether d's project recorded a delivery with d's body under another key.
func (s *Service) bodySeen(ctx context.Context, d *Delivery) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Delivery{}).
		Where("project_id = ? AND platform = ? AND body_sha256 = ? AND delivery_key <> ?", *d.ProjectID, d.Platform, d.BodySHA256, d.DeliveryKey).
		Count(&n).Error
	return n > 0, err
}
