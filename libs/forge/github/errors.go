package github

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v84/github"

	"fabu.dev/libs/apperr"
)

// Rate-limit back-off bounds: a rate-limited request is retried at most maxRetries times,
// never waiting longer than maxWait in all, so a caller cannot hang on GitHub's limiter.
// A limit that resets later than the remaining budget fails at once as unavailable.
const (
	maxRetries = 3
	maxWait    = 30 * time.Second
	minWait    = time.Second // a reset already past, or clocks apart: do not hammer
)

// call runs one API request, retrying while GitHub says it is rate limited, and maps the
// final error to an apperr error. op names the request in error messages.
func (c *Client) call(ctx context.Context, op string, do func() (*gh.Response, error)) (*gh.Response, error) {
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		resp, err := do()
		if err == nil {
			return resp, nil
		}
		status, header := answer(resp, err)
		d, limited := rateLimitWait(status, header, attempt, c.now())
		if !limited {
			return nil, mapError(op, status, err)
		}
		if attempt >= maxRetries || waited+d > maxWait {
			return nil, apperr.Wrap(err, apperr.CodeUnavailable, "github %s: rate limited; retry after %s", op, d.Round(time.Second))
		}
		if err := c.wait(ctx, d); err != nil {
			return nil, apperr.Wrap(err, apperr.CodeUnavailable, "github %s: waiting out the rate limit", op)
		}
		waited += d
	}
}

// answer finds the status and headers of the HTTP response behind a go-github error; 0
// when there was none. go-github has already read and closed its body.
func answer(resp *gh.Response, err error) (int, http.Header) {
	var (
		er *gh.ErrorResponse
		rl *gh.RateLimitError
		ab *gh.AbuseRateLimitError
		r  *http.Response
	)
	switch {
	case errors.As(err, &rl):
		r = rl.Response
	case errors.As(err, &ab):
		r = ab.Response
	case errors.As(err, &er):
		r = er.Response
	case resp != nil:
		r = resp.Response
	}
	if r == nil {
		return 0, nil
	}
	return r.StatusCode, r.Header
}

// rateLimitWait reports whether r is a rate-limit refusal and how long to wait before
// retrying: Retry-After (seconds) when given, else until X-RateLimit-Reset, else a back-off
// doubling from one second. GitHub refuses with 429, or with 403 and either
// X-RateLimit-Remaining: 0 (primary limit) or Retry-After (secondary limit).
func rateLimitWait(status int, h http.Header, attempt int, now time.Time) (time.Duration, bool) {
	retryAfter := strings.TrimSpace(h.Get("Retry-After"))
	exhausted := strings.TrimSpace(h.Get("X-RateLimit-Remaining")) == "0"
	switch {
	case status == http.StatusTooManyRequests:
	case status == http.StatusForbidden && (exhausted || retryAfter != ""):
	default:
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.ParseInt(retryAfter, 10, 64); err == nil && s >= 0 {
		d = time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	} else if t, err := http.ParseTime(retryAfter); err == nil {
		d = t.Sub(now)
	} else if reset, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && reset > 0 {
		d = time.Unix(reset, 0).Sub(now)
	} else {
		d = time.Second << min(attempt, 5)
	}
	return min(max(d, minWait), 24*time.Hour), true // a day is past any budget (maxWait)
}

// mapError maps a failed request to an apperr error: the status GitHub answered, or
// unavailable when there was no answer (network, timeout, cancelled, unreadable body).
func mapError(op string, status int, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(err, apperr.CodeUnavailable, "github %s", op)
	}
	var accepted *gh.AcceptedError
	if errors.As(err, &accepted) {
		return apperr.Wrap(err, apperr.CodeUnavailable, "github %s: GitHub is still computing the answer", op)
	}
	if status < 300 {
		return apperr.Wrap(err, apperr.CodeUnavailable, "github %s", op)
	}
	code := apperr.FromHTTPStatus(status)
	msg := http.StatusText(status)
	var er *gh.ErrorResponse
	if errors.As(err, &er) && strings.TrimSpace(er.Message) != "" {
		msg = clip(strings.TrimSpace(er.Message), 200)
	}
	return apperr.Wrap(err, code, "github %s: %d %s", op, status, msg)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
