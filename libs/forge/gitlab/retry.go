package gitlab

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// retryPolicy decides, inside client-go's retryablehttp loop, whether a failed attempt is
// tried again and after how long. One call (one forge.Client method) may retry at most
// maxRetries times and wait at most maxWait in all; a wait that would overrun that budget,
// or the context's deadline, is not started: the call fails at once as unavailable.
type retryPolicy struct {
	maxRetries int
	maxWait    time.Duration
	base       time.Duration // first wait when the server gives no hint; doubles per retry
	now        func() time.Time
}

// callState is one call's retry budget, carried in the request context so that the
// client-wide retryablehttp hooks can see it.
type callState struct {
	idempotent bool
	retries    int
	waited     time.Duration
	next       time.Duration // the wait check chose, for backoff to return
}

type callKey struct{}

// begin attaches a fresh retry budget for one call to ctx.
func (p *retryPolicy) begin(ctx context.Context, method string) context.Context {
	idem := method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete || method == http.MethodPut
	return context.WithValue(ctx, callKey{}, &callState{idempotent: idem})
}

// check is the retryablehttp.CheckRetry hook.
func (p *retryPolicy) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	st, _ := ctx.Value(callKey{}).(*callState)
	if st == nil || st.retries >= p.maxRetries {
		return false, nil
	}
	var wait time.Duration
	switch {
	case err != nil:
		// A request that never reached the server may always be sent again; one that may
		// have reached it only when repeating it is harmless.
		if !st.idempotent && !dialError(err) {
			return false, nil
		}
		wait = p.exponential(st.retries)
	case rateLimited(resp):
		wait = p.rateLimitWait(resp, st.retries)
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		if !st.idempotent {
			return false, nil // a 500 on POST may already have created the hook
		}
		wait = p.exponential(st.retries)
	default:
		return false, nil
	}
	if st.waited+wait > p.maxWait {
		return false, nil
	}
	if dl, ok := ctx.Deadline(); ok && p.now().Add(wait).After(dl) {
		return false, nil
	}
	st.retries++
	st.waited += wait
	st.next = wait
	return true, nil
}

// backoff is the retryablehttp.Backoff hook: it returns the wait check chose. retryablehttp
// sleeps it and gives up early when the request context ends.
func (p *retryPolicy) backoff(_, _ time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && resp.Request != nil {
		if st, ok := resp.Request.Context().Value(callKey{}).(*callState); ok {
			return st.next
		}
	}
	// A transport error comes without a response: check computed the same value.
	return p.exponential(attempt)
}

func (p *retryPolicy) exponential(retry int) time.Duration {
	if retry > 10 {
		retry = 10
	}
	return p.base << retry
}

// rateLimited reports a rate-limit answer: 429, or 403 with RateLimit-Remaining 0 (the
// shape other forges and some fronting proxies use when the limit is hit).
func rateLimited(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return resp.Header.Get("RateLimit-Remaining") == "0"
	}
	return false
}

// rateLimitWait honours Retry-After (seconds or an HTTP date), then RateLimit-Reset (Unix
// seconds), then falls back to exponential backoff.
func (p *retryPolicy) rateLimitWait(resp *http.Response, retry int) time.Duration {
	now := p.now()
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return clampSeconds(s)
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(t.Sub(now), 0), maxRateWait)
		}
	}
	if v := resp.Header.Get("RateLimit-Reset"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 0 {
			return min(max(time.Unix(s, 0).Sub(now), 0), maxRateWait)
		}
	}
	return p.exponential(retry)
}

// maxRateWait caps what a rate-limit answer can ask for: anything past a day is as good
// as forever (and past any budget), and a date or reset far ahead must not overflow.
const maxRateWait = 24 * time.Hour

// clampSeconds converts without overflowing, capped at maxRateWait.
func clampSeconds(s int64) time.Duration {
	return time.Duration(min(s, int64(maxRateWait/time.Second))) * time.Second
}

// dialError reports an error that happened while connecting, before anything was sent.
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
