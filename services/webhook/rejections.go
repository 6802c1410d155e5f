package webhook

import (
	"context"
	"fmt"
	"time"

	"fabu.dev/libs/forge"
)

// Reasons a delivery is refused, as webhook_rejections counts them. They are a fixed set so
// that the counts grow with projects and time, never with what senders choose to send.
const (
	RejectPlatform      = "platform"       // no such platform
	RejectNoProject     = "no_project"     // no such project
	RejectWrongPlatform = "wrong_platform" // the project takes another platform's deliveries
	RejectTooLarge      = "too_large"
	RejectBodyTimeout   = "body_timeout" // the body did not arrive within Config.BodyTimeout
	RejectNoSecret      = "no_secret"    // the project has no webhook secret
	RejectMode          = "mode"         // the project's webhook mode is not the platform's
	RejectSignature     = "signature"    // proof of the secret missing or wrong
	RejectStale         = "stale"        // signed timestamp outside the window
	RejectToken         = "token"        // trigger URL: no or a wrong token
	RejectUnreadable    = "unreadable"   // verified, but the body does not parse
	RejectRef           = "ref"          // a ref fabu never deploys
	RejectRequest       = "request"      // trigger URL: bad body, or the run cannot be requested
	RejectUnavailable   = "unavailable"  // fabu could not decide (database, master key)
	rejectOther         = "other"
)

// rejectionSamples is how many refused deliveries of one project, platform and reason are
// kept as delivery rows per hour; the rest are only counted.
const rejectionSamples = 10

// countRejection counts d's refusal for reason in webhook_rejections and reports whether d
// is one of the hour's samples, to be kept as a delivery row.
func (s *Service) countRejection(ctx context.Context, d *Delivery, reason string) bool {
	if reason == "" {
		reason = rejectOther
	}
	project, platform := "", d.Platform
	if d.ProjectID != nil {
		project = *d.ProjectID
	}
	if _, known := s.verifiers[forge.Platform(platform)]; !known && platform != PlatformTrigger {
		platform = "" // the sender's choice: not a key of a bounded table
	}
	now := s.now().UTC()
	period := now.Truncate(time.Hour)
	db := s.db.WithContext(context.WithoutCancel(ctx))
	err := db.Exec(`INSERT INTO webhook_rejections (project_id, platform, reason, period_start, rejected, sampled, last_at)
		VALUES (?, ?, ?, ?, 1, 0, ?)
		ON CONFLICT (project_id, platform, reason, period_start)
		DO UPDATE SET rejected = webhook_rejections.rejected + 1, last_at = excluded.last_at`,
		project, platform, reason, period, now).Error
	if err != nil {
		s.log.Error("count refused webhook delivery", "reason", reason, "err", err)
		return false
	}
	res := db.Exec(`UPDATE webhook_rejections SET sampled = sampled + 1
		WHERE project_id = ? AND platform = ? AND reason = ? AND period_start = ? AND sampled < ?`,
		project, platform, reason, period, rejectionSamples)
	if res.Error != nil {
		s.log.Error("sample refused webhook delivery", "reason", reason, "err", res.Error)
		return false
	}
	return res.RowsAffected == 1
}

// prune deletes delivery rows received, and rejection counts of hours begun, more than
// retention before now, in batches; it returns how many rows it removed. Several processes
// may prune at once: each batch deletes what is still there.
func (s *Service) prune(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
	cutoff := now.Add(-retention).UTC()
	var total int64
	for _, q := range []string{
		`DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE received_at < ? ORDER BY received_at LIMIT ?)`,
		`DELETE FROM webhook_rejections WHERE period_start IN
			(SELECT DISTINCT period_start FROM webhook_rejections WHERE period_start < ? ORDER BY period_start LIMIT ?)`,
	} {
		for {
			res := s.db.WithContext(ctx).Exec(q, cutoff, pruneBatch)
			if res.Error != nil {
				return total, fmt.Errorf("webhook retention before %s: %w", cutoff.Format(time.RFC3339), res.Error)
			}
			total += res.RowsAffected
			if res.RowsAffected < pruneBatch {
				break
			}
			if err := ctx.Err(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

const pruneBatch = 1000

// runRetention prunes once at start and then every RetentionEvery until ctx ends.
func (s *Service) runRetention(ctx context.Context) {
	every := s.cfg.RetentionEvery
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.prune(ctx, s.now(), s.cfg.Retention)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("delivery retention", "err", err)
		case n > 0:
			s.log.Info("delivery retention: removed old deliveries and rejection counts", "removed", n, "older_than", s.cfg.Retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
