package gitee

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter: whatever Retry-After says, the wait is never negative (an overflow
// would retry at once, hammering a platform that asked for quiet), never more than a day,
// and a number of seconds is honoured up to that day.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", " 12 ", "-1", "9223372037", "99999999999999999999", "Wed, 21 Oct 2026 07:28:00 GMT", "soon"} {
		f.Add(s, 0)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string, attempt int) {
		attempt = min(max(attempt, 0), maxRetries)
		d := retryAfter(h, attempt, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("retryAfter(%q, %d) = %s, want 0 to 24h", h, attempt, d)
		}
		if s, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil && s >= 0 {
			if want := time.Duration(min(s, 86400)) * time.Second; d != want {
				t.Fatalf("retryAfter(%q) = %s, want %s", h, d, want)
			}
		}
	})
}

// FuzzNextPage: total_page, however mangled, gives either no next page or the one after.
func FuzzNextPage(f *testing.F) {
	for _, s := range []string{"", "1", "3", "-2", "99999999999999999999", " 4", "x"} {
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, total string, page int) {
		page = max(page, 1)
		h := http.Header{}
		h.Set("total_page", total)
		got := nextPage(h, page).NextPage
		if got != 0 && got != page+1 {
			t.Fatalf("nextPage(total_page %q, page %d) = %d", total, page, got)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(total)); got != 0 && (err != nil || page >= n) {
			t.Fatalf("next page %d after page %d of %q", got, page, total)
		}
	})
}
