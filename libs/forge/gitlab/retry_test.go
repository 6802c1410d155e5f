package gitlab

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

// limited answers the first `fails` requests with status and h, then serves the project.
func limited(t *testing.T, fails, status int, h func() http.Header) *fakeGitLab {
	return newFake(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n <= fails {
			reply(w, status, []byte(`{"message":"slow down"}`), h())
			return
		}
		reply(w, 200, testenv.Fixture(t, "gitlab-api/project_get.go-scm.json"), nil)
	})
}

func TestRetryHonoursServer(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   func() http.Header
		minWait  time.Duration
		wantCall int
	}{
		{"429 Retry-After seconds", 429, func() http.Header { return http.Header{"Retry-After": {"1"}} }, 900 * time.Millisecond, 2},
		{"429 RateLimit-Reset", 429, func() http.Header {
			return http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(2*time.Second).Unix(), 10)}}
		}, 900 * time.Millisecond, 2},
		{"403 with RateLimit-Remaining 0", 403, func() http.Header { return http.Header{"Ratelimit-Remaining": {"0"}, "Retry-After": {"0"}} }, 0, 2},
		{"503 backs off and retries", 503, func() http.Header { return nil }, 10 * time.Millisecond, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := limited(t, 1, tc.status, tc.header)
			start := time.Now()
			p, err := f.client(t).Project(context.Background(), "g/p")
			if err != nil || p.ID != "178504" {
				t.Fatalf("Project = %+v, %v; want success after a retry", p, err)
			}
			if d := time.Since(start); d < tc.minWait {
				t.Errorf("retried after %v, want at least %v", d, tc.minWait)
			}
			if n := len(f.Calls()); n != tc.wantCall {
				t.Errorf("%d calls, want %d", n, tc.wantCall)
			}
		})
	}
}

func TestRetryBounds(t *testing.T) {
	always := func(h http.Header) func() http.Header { return func() http.Header { return h } }
	tests := []struct {
		name      string
		status    int
		header    http.Header
		method    string
		opts      []Option
		wantCalls int
	}{
		{"at most 3 retries", 429, http.Header{"Retry-After": {"0"}}, "GET", nil, 4},
		{"WithRetry lowers the count", 429, http.Header{"Retry-After": {"0"}}, "GET", []Option{WithRetry(1, time.Second)}, 2},
		{"wait beyond the 30 s budget is not started", 429, http.Header{"Retry-After": {"120"}}, "GET", nil, 1},
		{"reset beyond the budget", 429, http.Header{"Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}}, "GET", nil, 1},
		{"429 on POST is retried", 429, http.Header{"Retry-After": {"0"}}, "POST", nil, 4},
		{"500 on POST is not retried", 500, nil, "POST", nil, 1},
		{"404 is not retried", 404, nil, "GET", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := limited(t, 100, tc.status, always(tc.header))
			c, ctx := f.client(t, tc.opts...), context.Background()
			start := time.Now()
			var err error
			if tc.method == "POST" {
				_, err = c.CreateHook(ctx, "g/p", forge.HookSpec{URL: "https://fabu.example/h", Secret: "s"})
			} else {
				_, err = c.Project(ctx, "g/p")
			}
			if err == nil {
				t.Fatal("call succeeded against a server that always fails")
			}
			if tc.status != 404 && !apperr.Is(err, apperr.CodeUnavailable) {
				t.Errorf("error = %v, want unavailable", err)
			}
			if n := len(f.Calls()); n != tc.wantCalls {
				t.Errorf("%d calls, want %d", n, tc.wantCalls)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("gave up after %v; a wait that does not fit must not be started", d)
			}
		})
	}
}

func TestRetryHonoursContext(t *testing.T) {
	t.Run("deadline shorter than the wait", func(t *testing.T) {
		f := limited(t, 100, 429, func() http.Header { return http.Header{"Retry-After": {"10"}} })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := f.client(t).Project(ctx, "g/p")
		if !apperr.Is(err, apperr.CodeUnavailable) || len(f.Calls()) != 1 || ctx.Err() != nil {
			t.Errorf("error = %v after %d calls (ctx %v); want unavailable at once, 1 call", err, len(f.Calls()), ctx.Err())
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		f := limited(t, 100, 429, func() http.Header { return http.Header{"Retry-After": {"20"}} })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := f.client(t).Project(ctx, "g/p"); done <- err }()
		deadline := time.Now().Add(5 * time.Second)
		for len(f.Calls()) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // poll for the first request
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) || !apperr.Is(err, apperr.CodeUnavailable) {
				t.Errorf("error = %v, want unavailable wrapping context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call kept waiting after its context was cancelled")
		}
	})
}

// Transport errors: a request that may have reached GitLab is repeated only when that is
// harmless; one that never left (a failed dial) always may be.
func TestRetryTransportErrors(t *testing.T) {
	p := &retryPolicy{maxRetries: 3, maxWait: time.Second, base: time.Millisecond, now: time.Now}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		method string
		err    error
		want   bool
	}{
		{"GET", reset, true},
		{"DELETE", reset, true},
		{"POST", reset, false},
		{"POST", dial, true},
	}
	for _, tc := range tests {
		ctx := p.begin(context.Background(), tc.method)
		if got, _ := p.check(ctx, nil, tc.err); got != tc.want {
			t.Errorf("%s after %v: retry = %v, want %v", tc.method, tc.err, got, tc.want)
		}
	}
	// Without a budget in the context (a request not made by this package), nothing retries.
	if got, _ := p.check(context.Background(), nil, reset); got {
		t.Error("retried a request without a call budget")
	}
}

func TestRateLimitWaitParsing(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &retryPolicy{base: 100 * time.Millisecond, now: func() time.Time { return now }}
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"http date", http.Header{"Retry-After": {now.Add(3 * time.Second).Format(http.TimeFormat)}}, 3 * time.Second},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"reset", http.Header{"Ratelimit-Reset": {strconv.FormatInt(now.Unix()+5, 10)}}, 5 * time.Second},
		{"retry-after wins over reset", http.Header{"Retry-After": {"1"}, "Ratelimit-Reset": {strconv.FormatInt(now.Unix()+5, 10)}}, time.Second},
		{"huge", http.Header{"Retry-After": {"99999999999999999"}}, 24 * time.Hour},
		{"garbage falls back", http.Header{"Retry-After": {"soon"}}, 200 * time.Millisecond},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: 429, Header: tc.h}
		if got := p.rateLimitWait(resp, 1); got != tc.want {
			t.Errorf("%s: wait = %v, want %v", tc.name, got, tc.want)
		}
	}
}
