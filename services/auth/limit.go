package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
)

// LockedError is returned for a user name locked after too many failed sign-ins.
type LockedError struct {
	RetryAfter time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %s", e.RetryAfter.Round(time.Second))
}

// tooMany answers 429 with Retry-After in whole seconds.
func tooMany(c *gin.Context, wait time.Duration, why string) {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Header("Retry-After", strconv.Itoa(secs))
	c.AbortWithStatusJSON(apperr.HTTPStatus(apperr.CodeRateLimited), gin.H{
		"code":    apperr.CodeRateLimited,
		"message": fmt.Sprintf("%s; try again in %s", why, (time.Duration(secs) * time.Second).String()),
	})
}

// loginFailures is a row of auth_login_failures. Failures are counted per user name as
// typed, whether or not the user exists, so a lockout says nothing about who exists; they
// live in the database, so every auth process sees the same count.
type loginFailures struct {
	Username    string `gorm:"primaryKey"`
	Failures    int
	WindowStart time.Time
	LockedUntil *time.Time
}

func (loginFailures) TableName() string { return "auth_login_failures" }

func (s *Service) checkLocked(ctx context.Context, username string) error {
	var f loginFailures
	err := s.db.WithContext(ctx).Where("username = ?", username).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read login failures: %w", err)
	}
	if now := s.now(); f.LockedUntil != nil && now.Before(*f.LockedUntil) {
		return &LockedError{RetryAfter: f.LockedUntil.Sub(now)}
	}
	return nil
}

// recordFailure counts a failed sign-in of username; the LockoutFailures-th failure within
// LockoutWindow locks the name for LockoutDuration.
func (s *Service) recordFailure(ctx context.Context, username string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE auth_login_failures SET failures = failures + 1
			WHERE username = ? AND window_start > ? AND locked_until IS NULL`,
			username, now.Add(-s.cfg.LockoutWindow))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 { // no row, or its window or lock is over: start a new window
			if err := tx.Exec(`INSERT INTO auth_login_failures (username, failures, window_start, locked_until) VALUES (?, 1, ?, NULL)
				ON CONFLICT (username) DO UPDATE SET failures = 1, window_start = excluded.window_start, locked_until = NULL
				WHERE auth_login_failures.locked_until IS NULL OR auth_login_failures.locked_until <= excluded.window_start`,
				username, now).Error; err != nil {
				return err
			}
		}
		return tx.Exec(`UPDATE auth_login_failures SET locked_until = ? WHERE username = ? AND failures >= ? AND locked_until IS NULL`,
			now.Add(s.cfg.LockoutDuration), username, s.cfg.LockoutFailures).Error
	})
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

func (s *Service) clearFailures(ctx context.Context, username string) error {
	if err := s.db.WithContext(ctx).Where("username = ?", username).Delete(&loginFailures{}).Error; err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// ipLimiter is a token bucket per client address, in memory: each auth process limits the
// attempts it sees. burst attempts at once, then one per refill.
type ipLimiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newIPLimiter(burst int, refill time.Duration) *ipLimiter {
	return &ipLimiter{burst: float64(burst), refill: refill, buckets: map[string]*bucket{}}
}

// take spends one attempt of ip; when none is left it says how long until the next.
func (l *ipLimiter) take(ip string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(l.refill)), false
	}
	b.tokens--
	return 0, true
}

// sweep forgets addresses whose bucket has filled up again.
func (l *ipLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	full := time.Duration(l.burst * float64(l.refill))
	for ip, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, ip)
		}
	}
}
