package gateway

import (
	"context"
	"time"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/runlog"
)

// RetentionConfig says how long the gateway keeps audit entries and run logs. A zero age
// keeps them forever. `fabu up` and `fabu serve gateway` default to 365 days of audit log
// and 30 days of run logs (--audit-retention, --log-retention).
type RetentionConfig struct {
	AuditRetention time.Duration // audit entries older than this are deleted
	LogRetention   time.Duration // log lines of runs finished longer ago are deleted
	RetentionEvery time.Duration // how often the loop runs; default 1h
}

// runRetention prunes once at start and then every RetentionEvery until ctx ends. Several
// gateways may run it at once: each pass deletes what is still there.
func (s *Service) runRetention(ctx context.Context) {
	rc := s.cfg.RetentionConfig
	if rc.AuditRetention <= 0 && rc.LogRetention <= 0 {
		return
	}
	every := rc.RetentionEvery
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.prune(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune applies the retention ages relative to now.
func (s *Service) prune(ctx context.Context, now time.Time) {
	rc := s.cfg.RetentionConfig
	if rc.AuditRetention > 0 {
		n, err := audit.Prune(ctx, s.db.DB, now.Add(-rc.AuditRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("audit retention", "err", err)
		case n > 0:
			s.log.Info("audit retention: removed old entries", "removed", n, "older_than", rc.AuditRetention.String())
		}
	}
	if rc.LogRetention > 0 {
		n, err := runlog.Prune(ctx, s.db.DB, now.Add(-rc.LogRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("log retention", "err", err)
		case n > 0:
			s.log.Info("log retention: removed the logs of old runs", "runs", n, "older_than", rc.LogRetention.String())
		}
	}
}
