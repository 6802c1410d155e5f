// Package gitee puts Gitee (码云), gitee.com or a self-hosted Gitee Enterprise, behind
// fabu's forge interfaces: Client speaks the API v5 over net/http and Verifier checks and
// reads webhook deliveries in signature or password mode.
package gitee

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// DefaultBaseURL is the web root of gitee.com; the API lives at <BaseURL>/api/v5.
const DefaultBaseURL = "https://gitee.com"

// Rate-limit back-off bounds: a 429 is retried at most maxRetries times, never waiting
// longer than maxWait in all, so a caller's request cannot hang on Gitee's limiter.
const (
	maxRetries = 3
	maxWait    = 30 * time.Second
)

// Bounds on what is read from a response: lists of 100 repositories are a few hundred KiB.
const (
	maxBody      = 16 << 20
	maxErrorBody = 4 << 10
)

// Client is the Gitee API v5 as fabu uses it. The access token travels as the access_token
// query parameter, which Gitee requires; it never appears in an error or in String.
type Client struct {
	base  *url.URL // …/api/v5, no trailing slash
	token string
	hc    *http.Client
	// wait sleeps between rate-limited attempts; tests replace it to keep time virtual.
	wait func(ctx context.Context, d time.Duration) error
}

var _ forge.Client = (*Client)(nil)

// New returns a client for conn. An empty BaseURL means gitee.com; any other is the web root
// of a Gitee Enterprise or self-hosted installation. A nil httpClient means
// http.DefaultClient. conn.Platform must be empty or forge.Gitee.
func New(conn forge.Connection, httpClient *http.Client) (*Client, error) {
	if conn.Platform != "" && conn.Platform != forge.Gitee {
		return nil, apperr.Invalid("gitee client given a %q connection", conn.Platform)
	}
	raw := strings.TrimRight(conn.BaseURL, "/")
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, apperr.Invalid("gitee base URL %q must be an http(s) URL without query or credentials", conn.BaseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/api/v5"
	u.RawPath = ""
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: u, token: conn.Token, hc: httpClient, wait: sleepCtx}, nil
}

// Platform returns forge.Gitee.
func (c *Client) Platform() forge.Platform { return forge.Gitee }

// String describes the client without its token.
func (c *Client) String() string { return "gitee.Client(" + c.base.String() + ")" }

// GoString is String, so %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

// call is one API request: method, path below /api/v5 (already escaped), query and an
// optional JSON body. It returns the response headers for pagination.
type call struct {
	method string
	path   string
	query  url.Values
	body   any
}

// do runs cl, retrying on 429, and decodes a 2xx JSON response into out (when non-nil).
func (c *Client) do(ctx context.Context, cl call, out any) (http.Header, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, apperr.Wrap(err, apperr.CodeInternal, "gitee %s %s: encode body", cl.method, cl.path)
		}
	}
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, cl, payload)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < maxRetries {
			d := retryAfter(resp.Header.Get("Retry-After"), attempt, time.Now())
			drain(resp)
			if waited+d <= maxWait {
				if err := c.wait(ctx, d); err != nil {
					return nil, apperr.Wrap(err, apperr.CodeUnavailable, "gitee %s %s: waiting out the rate limit", cl.method, cl.path)
				}
				waited += d
				continue
			}
			return nil, apperr.Unavailable("gitee %s %s: rate limited; retry after %s", cl.method, cl.path, d)
		}
		defer drain(resp)
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, statusError(cl, resp)
		}
		if out != nil && resp.StatusCode != http.StatusNoContent {
			dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
			if err := dec.Decode(out); err != nil {
				return nil, apperr.Wrap(err, apperr.CodeUnavailable, "gitee %s %s: unreadable response", cl.method, cl.path)
			}
		}
		return resp.Header, nil
	}
}

// send makes one attempt. Transport errors are rewrapped so that the request URL, which
// carries the token, never reaches the error text.
func (c *Client) send(ctx context.Context, cl call, payload []byte) (*http.Response, error) {
	q := url.Values{}
	for k, v := range cl.query {
		q[k] = v
	}
	q.Set("access_token", c.token)
	target := c.base.String() + cl.path + "?" + q.Encode()

	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return nil, apperr.Invalid("gitee %s %s: bad request", cl.method, cl.path)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fabu")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // Op and URL are dropped: the URL holds the token
		}
		return nil, apperr.Wrap(err, apperr.CodeUnavailable, "gitee %s %s", cl.method, cl.path)
	}
	return resp, nil
}

// statusError maps a non-2xx response and its {"message": …} body to an apperr error.
func statusError(cl call, resp *http.Response) error {
	var e struct {
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(b, &e) == nil && strings.TrimSpace(e.Message) != "" {
		msg = clip(strings.TrimSpace(e.Message), 200)
	}
	code := apperr.FromHTTPStatus(resp.StatusCode)
	return apperr.New(code, "gitee %s %s: %d: %s", cl.method, cl.path, resp.StatusCode, msg)
}

// retryAfter reads Retry-After (seconds or an HTTP date); without it the back-off doubles
// from one second. The wait is at most a day: the caller's budget (maxWait) refuses that,
// where an overflowing number of seconds would have retried at once.
func retryAfter(h string, attempt int, now time.Time) time.Duration {
	const day = 24 * time.Hour
	h = strings.TrimSpace(h)
	if s, err := strconv.ParseInt(h, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(day/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), day)
	}
	return time.Second << min(attempt, 10)
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

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// repoPath checks an "owner/repo" path and returns it escaped for a URL.
func repoPath(project string) (string, error) {
	owner, repo, ok := strings.Cut(project, "/")
	if !ok || !validSegment(owner) || !validSegment(repo) {
		return "", apperr.Invalid("gitee project %q is not owner/repo", project)
	}
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo), nil
}

func validSegment(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\?#%") &&
		strings.TrimSpace(s) == s
}

// pageQuery turns list options into page and per_page (1-based, at most 100).
func pageQuery(opt forge.ListOptions) (url.Values, int) {
	page, per := opt.Page, opt.PerPage
	if page < 1 {
		page = 1
	}
	if per < 1 {
		per = 20
	}
	if per > 100 {
		per = 100
	}
	return url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(per)}}, page
}

// nextPage reads Gitee's total_page header. Without it there is no next page: guessing one
// from a full page would loop forever on endpoints that ignore page.
func nextPage(h http.Header, page int) forge.PageInfo {
	total, err := strconv.Atoi(strings.TrimSpace(h.Get("total_page")))
	if err != nil || page >= total {
		return forge.PageInfo{}
	}
	return forge.PageInfo{NextPage: page + 1}
}
