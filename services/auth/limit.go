package auth

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
)

// LockedError is returned when a client must wait before trying a user name again, after
// too many failed sign-ins (its own, or the name's while the client has failed recently).
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

// Sign-in throttling. Failed sign-ins are counted per user name as typed, whether or not
// the user exists (so a 429 says nothing about who exists), in the database (so every auth
// process sees the same counts), twice:
//
//   - per (name, client address), in auth_login_throttle: from the LockoutFailures-th
//     recent failure on, that client waits LockoutBackoff before its next try of the name,
//     doubled with each further failure, up to LockoutDuration. It slows only that client.
//   - per name from every address, in auth_login_failures: the same backoff, but it holds
//     only against clients with a recent failure of their own (on any name). A client
//     without one is always let through to the password check.
//
// So nobody can keep a user out by failing on their name on purpose — the hard lock this
// replaces let anyone lock the administrator out forever by renewing it — while a guesser
// gets LockoutFailures tries per address, and one per fresh address while the name is slowed.
// A failure is forgotten LockoutWindow after it (or after the wait it caused); a successful
// sign-in forgets the name's failures and the client's.

// throttleAddress is the client a failure is counted against: an IPv4 address, or the /64
// network of an IPv6 address, since one host commonly holds a whole /64 and could otherwise
// be a fresh client for every guess.
func throttleAddress(address string) string {
	a, err := netip.ParseAddr(address)
	if err != nil || a.Unmap().Is4() {
		return address
	}
	p, err := a.Prefix(64)
	if err != nil {
		return address
	}
	return p.String()
}

// loginThrottle is a row of auth_login_throttle.
type loginThrottle struct {
	Username      string `gorm:"primaryKey"`
	Address       string `gorm:"primaryKey"`
	Failures      int
	LastFailureAt time.Time
	BlockedUntil  *time.Time
}

func (loginThrottle) TableName() string { return "auth_login_throttle" }

// loginFailures is a row of auth_login_failures: a name's failures from every address.
// LockedUntil is the end of the name's backoff.
type loginFailures struct {
	Username      string `gorm:"primaryKey"`
	Failures      int
	WindowStart   time.Time
	LastFailureAt *time.Time
	LockedUntil   *time.Time
}

func (loginFailures) TableName() string { return "auth_login_failures" }

// backoff is the wait after the n-th recent failure.
func (s *Service) backoff(n int) time.Duration {
	over := n - s.cfg.LockoutFailures
	if over < 0 {
		return 0
	}
	if over > 30 || s.cfg.LockoutBackoff<<over > s.cfg.LockoutDuration {
		return s.cfg.LockoutDuration
	}
	return s.cfg.LockoutBackoff << over
}

// checkLocked returns a *LockedError when client address may not try username now: the
// pair is backing off, or the name is and the client has failed recently.
func (s *Service) checkLocked(ctx context.Context, username, address string) error {
	address = throttleAddress(address)
	now := s.now()
	db := s.db.WithContext(ctx)
	var pair []loginThrottle
	if err := db.Where("username = ? AND address = ?", username, address).Limit(1).Find(&pair).Error; err != nil {
		return fmt.Errorf("read login failures: %w", err)
	}
	if len(pair) == 1 && pair[0].BlockedUntil != nil && now.Before(*pair[0].BlockedUntil) {
		return &LockedError{RetryAfter: pair[0].BlockedUntil.Sub(now)}
	}
	var name []loginFailures
	if err := db.Where("username = ?", username).Limit(1).Find(&name).Error; err != nil {
		return fmt.Errorf("read login failures: %w", err)
	}
	if len(name) == 0 || name[0].LockedUntil == nil || !now.Before(*name[0].LockedUntil) {
		return nil
	}
	var recent int64
	err := db.Model(&loginThrottle{}).Where("address = ? AND last_failure_at > ?", address, now.Add(-s.cfg.LockoutWindow)).
		Limit(1).Count(&recent).Error
	if err != nil {
		return fmt.Errorf("read login failures: %w", err)
	}
	if recent > 0 {
		return &LockedError{RetryAfter: name[0].LockedUntil.Sub(now)}
	}
	return nil
}

// recordFailure counts a failed sign-in of username from client address, and sets the
// backoff of the pair and of the name when the count reaches LockoutFailures. Counts
// restart when the last failure (or the backoff it caused) is older than LockoutWindow.
func (s *Service) recordFailure(ctx context.Context, username, address string) error {
	address = throttleAddress(address)
	now := s.now()
	forget := now.Add(-s.cfg.LockoutWindow)
	until := func(n int) *time.Time {
		if d := s.backoff(n); d > 0 {
			t := now.Add(d)
			return &t
		}
		return nil
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO auth_login_throttle (username, address, failures, last_failure_at, blocked_until) VALUES (?, ?, 1, ?, NULL)
			ON CONFLICT (username, address) DO UPDATE SET last_failure_at = excluded.last_failure_at,
			failures = CASE WHEN COALESCE(auth_login_throttle.blocked_until, auth_login_throttle.last_failure_at) > ?
				THEN auth_login_throttle.failures + 1 ELSE 1 END`,
			username, address, now, forget).Error
		if err != nil {
			return err
		}
		var n int
		if err := tx.Model(&loginThrottle{}).Where("username = ? AND address = ?", username, address).Select("failures").Scan(&n).Error; err != nil {
			return err
		}
		if err := tx.Model(&loginThrottle{}).Where("username = ? AND address = ?", username, address).
			Update("blocked_until", until(n)).Error; err != nil {
			return err
		}
		err = tx.Exec(`INSERT INTO auth_login_failures (username, failures, window_start, last_failure_at, locked_until) VALUES (?, 1, ?, ?, NULL)
			ON CONFLICT (username) DO UPDATE SET last_failure_at = excluded.last_failure_at,
			failures = CASE WHEN COALESCE(auth_login_failures.locked_until, auth_login_failures.last_failure_at, auth_login_failures.window_start) > ?
				THEN auth_login_failures.failures + 1 ELSE 1 END,
			window_start = CASE WHEN COALESCE(auth_login_failures.locked_until, auth_login_failures.last_failure_at, auth_login_failures.window_start) > ?
				THEN auth_login_failures.window_start ELSE excluded.window_start END`,
			username, now, now, forget, forget).Error
		if err != nil {
			return err
		}
		if err := tx.Model(&loginFailures{}).Where("username = ?", username).Select("failures").Scan(&n).Error; err != nil {
			return err
		}
		return tx.Model(&loginFailures{}).Where("username = ?", username).Update("locked_until", until(n)).Error
	})
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// clearFailures forgets the failures of username, from every address and from address.
func (s *Service) clearFailures(ctx context.Context, username, address string) error {
	address = throttleAddress(address)
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("username = ?", username).Delete(&loginFailures{}).Error; err != nil {
			return err
		}
		return tx.Where("username = ? AND address = ?", username, address).Delete(&loginThrottle{}).Error
	})
	if err != nil {
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
