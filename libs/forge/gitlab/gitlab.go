// Package gitlab connects fabu to GitLab, on gitlab.com or self-hosted: a forge.Client over
// the REST API v4 (through gitlab.com/gitlab-org/api/client-go) and a forge.Verifier for
// project and group webhooks.
package gitlab

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// DefaultBaseURL is the web root used when a connection names none.
const DefaultBaseURL = "https://gitlab.com"

// Defaults of the retry policy: how often and how long one call may wait for GitLab to
// lift a rate limit or recover from an outage.
const (
	DefaultMaxRetries = 3
	DefaultMaxWait    = 30 * time.Second
)

// Client is GitLab's REST API v4 as fabu uses it. It is safe for concurrent use.
type Client struct {
	api   *gl.Client
	base  *url.URL // the web root, without a trailing slash
	retry retryPolicy
}

var _ forge.Client = (*Client)(nil)

// Option configures a Client.
type Option func(*settings)

type settings struct {
	httpClient *http.Client
	bearer     bool
	maxRetries int
	maxWait    time.Duration
}

// WithHTTPClient sends requests through hc (its transport, proxy and timeout) instead of a
// default client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(s *settings) { s.httpClient = hc } }

// WithBearerToken sends the token as "Authorization: Bearer" (an OAuth access token)
// instead of GitLab's PRIVATE-TOKEN header (personal, group or project access tokens).
func WithBearerToken() Option { return func(s *settings) { s.bearer = true } }

// WithRetry bounds how a call retries rate limits (429) and outages (5xx, and transport
// errors on idempotent calls): at most maxRetries retries and maxWait of waiting in all.
// A call whose server-announced wait does not fit in what is left fails at once with an
// unavailable error instead of sleeping. maxRetries 0 turns retries off.
func WithRetry(maxRetries int, maxWait time.Duration) Option {
	return func(s *settings) { s.maxRetries, s.maxWait = maxRetries, maxWait }
}

// New returns a client for the GitLab installation conn names. conn.BaseURL is the web root
// (https://gitlab.example.com, or with a path prefix); empty means gitlab.com. The API is
// reached at <base>/api/v4.
func New(conn forge.Connection, opts ...Option) (*Client, error) {
	if conn.Platform != "" && conn.Platform != forge.GitLab {
		return nil, apperr.Invalid("gitlab: connection is for platform %q", conn.Platform)
	}
	if conn.Token == "" {
		return nil, apperr.Invalid("gitlab: connection has no access token")
	}
	base, err := parseBaseURL(conn.BaseURL)
	if err != nil {
		return nil, err
	}
	s := settings{maxRetries: DefaultMaxRetries, maxWait: DefaultMaxWait}
	for _, o := range opts {
		o(&s)
	}
	if s.maxRetries < 0 || s.maxWait < 0 {
		return nil, apperr.Invalid("gitlab: retry bounds must not be negative")
	}
	c := &Client{base: base, retry: retryPolicy{maxRetries: s.maxRetries, maxWait: s.maxWait, base: 500 * time.Millisecond, now: time.Now}}

	hc := &http.Client{Timeout: 30 * time.Second}
	if s.httpClient != nil {
		cp := *s.httpClient
		hc = &cp
	}
	hc.Transport = linkGuard{next: hc.Transport}

	var auth gl.AuthSource = gl.AccessTokenAuthSource{Token: conn.Token}
	if s.bearer {
		auth = bearerAuth(conn.Token)
	}
	api, err := gl.NewAuthSourceClient(auth,
		gl.WithBaseURL(base.String()+"/api/v4"),
		gl.WithHTTPClient(hc),
		gl.WithURLWarningLogger(slog.New(slog.DiscardHandler)),
		// client-go already retries through hashicorp/go-retryablehttp (5 retries, and on
		// 429 it honours RateLimit-Reset without any bound and ignores Retry-After). We keep
		// its loop and replace only the policy, so there is one retry loop, bounded.
		gl.WithCustomRetryMax(s.maxRetries),
		gl.WithCustomRetry(c.retry.check),
		gl.WithCustomBackoff(c.retry.backoff),
	)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.CodeInvalid, "gitlab: configure client for %s", base)
	}
	c.api = api
	return c, nil
}

// parseBaseURL checks a web root and normalizes it: http or https, a host, no credentials,
// query or fragment, no trailing slash, and no /api/v4 suffix (accepted, then dropped).
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, apperr.Invalid("gitlab: base URL %q does not parse", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, apperr.Invalid("gitlab: base URL %q must be http(s)://host[/path]", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, apperr.Invalid("gitlab: base URL %q must not carry credentials, a query or a fragment", u.Redacted())
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v4")
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Platform returns forge.GitLab.
func (c *Client) Platform() forge.Platform { return forge.GitLab }

// BaseURL returns the web root the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// String names the installation and never the token.
func (c *Client) String() string { return "gitlab.Client(" + c.base.String() + ")" }

// GoString keeps %#v from printing the token held inside client-go.
func (c *Client) GoString() string { return c.String() }

// bearerAuth sends an OAuth access token.
type bearerAuth string

func (bearerAuth) Init(context.Context, *gl.Client) error { return nil }

func (b bearerAuth) Header(context.Context) (key, value string, err error) {
	return "Authorization", "Bearer " + string(b), nil
}

// linkGuard drops a Link header client-go cannot read: its parser indexes the part after
// "rel" without checking, so `Link: <x>; next` from a proxy would panic inside a call.
type linkGuard struct{ next http.RoundTripper }

func (g linkGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	next := g.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if resp != nil && !linkReadable(resp.Header.Get("Link")) {
		resp.Header.Del("Link")
	}
	return resp, err
}

// linkReadable mirrors client-go's populateLinkValues: every comma-separated part with a
// ";" must have an "=" in its second field.
func linkReadable(link string) bool {
	for part := range strings.SplitSeq(link, ",") {
		fields := strings.Split(part, ";")
		if len(fields) >= 2 && !strings.Contains(fields[1], "=") {
			return false
		}
	}
	return true
}
