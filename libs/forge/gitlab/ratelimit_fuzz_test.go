package gitlab

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRateLimitWait: the wait a rate-limit answer asks for is never negative and never
// more than a day, whatever Retry-After and RateLimit-Reset say.
func FuzzRateLimitWait(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"30", ""}, {"-5", ""}, {"", "1796540888"}, {"", "9223372036854775807"},
		{"Wed, 21 Oct 3026 07:28:00 GMT", ""}, {"x", "y"}} {
		f.Add(s[0], s[1], 0)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, retryAfter, reset string, retry int) {
		p := &retryPolicy{now: func() time.Time { return now }}
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("RateLimit-Reset", reset)
		d := p.rateLimitWait(&http.Response{StatusCode: http.StatusTooManyRequests, Header: h}, min(max(retry, 0), 10))
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("wait %s for Retry-After %q RateLimit-Reset %q, want 0 to 24h", d, retryAfter, reset)
		}
	})
}
