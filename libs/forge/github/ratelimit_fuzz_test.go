package github

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRateLimitWait: only 429, or 403 with an exhausted limit or a Retry-After, is a rate
// limit, and its wait is between minWait and a day whatever the headers say (a reset far
// ahead or an overflowing number must not wait for ever, or not at all).
func FuzzRateLimitWait(f *testing.F) {
	f.Add(429, "", "", "", 0)
	f.Add(403, "60", "", "", 1)
	f.Add(403, "", "0", "1796540888", 2)
	f.Add(403, "", "0", "9223372036854775807", 0)
	f.Add(403, "Wed, 21 Oct 3026 07:28:00 GMT", "", "", 0)
	f.Add(403, "", "5", "", 0)
	f.Add(500, "1", "0", "", 0)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter, remaining, reset string, attempt int) {
		attempt = min(max(attempt, 0), maxRetries)
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Reset", reset)
		d, limited := rateLimitWait(status, h, attempt, now)
		if limited && status != http.StatusTooManyRequests && status != http.StatusForbidden {
			t.Fatalf("status %d taken for a rate limit", status)
		}
		if limited && (d < minWait || d > 24*time.Hour) {
			t.Fatalf("wait %s for Retry-After %q Reset %q, want %s to 24h", d, retryAfter, reset, minWait)
		}
	})
}
