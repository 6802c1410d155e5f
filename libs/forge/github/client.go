// Package github puts GitHub, github.com or GitHub Enterprise Server, behind fabu's forge
// interfaces: Client speaks the REST API through google/go-github, and Verifier checks and
// reads webhook deliveries signed with X-Hub-Signature-256.
package github

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v84/github"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// DefaultBaseURL is the web root of github.com; its API is DefaultAPIURL. Any other base
// URL is a GitHub Enterprise Server, whose API lives at <BaseURL>/api/v3/.
const (
	DefaultBaseURL = "https://github.com"
	DefaultAPIURL  = "https://api.github.com/"
)

// Request headers GitHub documents for its REST API.
const (
	mediaType  = "application/vnd.github+json"
	apiVersion = "2022-11-28"
	userAgent  = "fabu"
)

// maxBody bounds what is read from one response; a page of 100 repositories is ~600 KiB.
const maxBody = 32 << 20

// defaultTimeout bounds one HTTP exchange when the caller brings no http.Client.
const defaultTimeout = 60 * time.Second

// Client is the GitHub REST API as fabu uses it. The token travels only in the
// Authorization header; it never appears in an error or in String.
type Client struct {
	gh  *gh.Client
	api string // API root, for String
	// wait sleeps between rate-limited attempts and now reads the clock the reset time is
	// measured against; tests replace both to keep time virtual.
	wait func(ctx context.Context, d time.Duration) error
	now  func() time.Time
}

var _ forge.Client = (*Client)(nil)

// Option adjusts a Client made by New.
type Option func(*options)

type options struct {
	hc *http.Client
}

// WithHTTPClient makes the Client send its requests through hc (its Transport, timeout and
// redirect policy). The default is a client with a 60 s timeout over http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// New returns a client for conn. An empty BaseURL, or github.com's, means github.com (API
// https://api.github.com); any other is the web root of a GitHub Enterprise Server, reached
// at <BaseURL>/api/v3/. conn.Platform must be empty or forge.GitHub. An empty token makes
// unauthenticated requests, which GitHub allows for public data at a low rate.
func New(conn forge.Connection, opts ...Option) (*Client, error) {
	if conn.Platform != "" && conn.Platform != forge.GitHub {
		return nil, apperr.Invalid("github client given a %q connection", conn.Platform)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	hc := &http.Client{Timeout: defaultTimeout}
	if o.hc != nil {
		copied := *o.hc
		hc = &copied
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = headerTransport{base: base}

	c := gh.NewClient(hc).WithAuthToken(conn.Token)
	api := DefaultAPIURL
	if enterprise, err := enterpriseAPI(conn.BaseURL); err != nil {
		return nil, err
	} else if enterprise != "" {
		api = enterprise
		uploads := strings.TrimSuffix(enterprise, "api/v3/") + "api/uploads/"
		if c, err = c.WithEnterpriseURLs(enterprise, uploads); err != nil {
			return nil, apperr.Invalid("github base URL %q: %v", conn.BaseURL, err)
		}
	}
	// Set last: go-github's With* methods return copies that drop these fields.
	c.UserAgent = userAgent
	// go-github refuses, without a network call, requests it believes would be rate
	// limited, by its own wall clock. Client.call does its own bounded back-off from the
	// response headers instead, and must see the real answer when it retries.
	c.DisableRateLimitCheck = true
	return &Client{gh: c, api: api, wait: sleepCtx, now: time.Now}, nil
}

// enterpriseAPI returns <base>/api/v3/ for a GitHub Enterprise base URL, or "" for
// github.com. The suffix is added here rather than left to go-github, which skips it for
// hosts named api.*.
func enterpriseAPI(raw string) (string, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", apperr.Invalid("github base URL %q must be an http(s) URL without query or credentials", raw)
	}
	switch strings.ToLower(u.Host) {
	case "github.com", "www.github.com", "api.github.com":
		if u.Path == "" {
			return "", nil
		}
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/api/v3") + "/api/v3/"
	u.RawPath = ""
	return u.String(), nil
}

// headerTransport sets the media type GitHub documents (go-github sends the older
// application/vnd.github.v3+json) and bounds response bodies.
type headerTransport struct{ base http.RoundTripper }

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", mediaType)
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := t.base.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, maxBody), Closer: resp.Body}
	}
	return resp, err
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// Platform returns forge.GitHub.
func (c *Client) Platform() forge.Platform { return forge.GitHub }

// String describes the client without its token.
func (c *Client) String() string { return "github.Client(" + c.api + ")" }

// GoString is String, so %#v does not print internals either.
func (c *Client) GoString() string { return c.String() }

// Projects lists the repositories the token can see (GET /user/repos: owned, collaborator
// and organization member). GitHub has no name filter there, so opt.Search keeps, from the
// page GitHub returned, the repositories whose full name contains it (case-insensitive);
// a filtered page may be short or empty while NextPage still points further.
func (c *Client) Projects(ctx context.Context, opt forge.ListOptions) ([]forge.Project, forge.PageInfo, error) {
	lo := listOptions(opt)
	var repos []*gh.Repository
	resp, err := c.call(ctx, "list repositories", func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		repos, r, err = c.gh.Repositories.ListByAuthenticatedUser(ctx, &gh.RepositoryListByAuthenticatedUserOptions{
			Sort: "full_name", ListOptions: lo,
		})
		return r, err
	})
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Project, 0, len(repos))
	for _, r := range repos {
		if r == nil || !matches(r.GetFullName(), opt.Search) {
			continue
		}
		out = append(out, project(r))
	}
	return out, pageInfo(resp), nil
}

// Project returns one repository by its "owner/name" path.
func (c *Client) Project(ctx context.Context, path string) (forge.Project, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return forge.Project{}, err
	}
	var repo *gh.Repository
	_, err = c.call(ctx, "get repository "+path, func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		repo, r, err = c.gh.Repositories.Get(ctx, owner, name)
		return r, err
	})
	if err != nil {
		return forge.Project{}, err
	}
	if repo == nil {
		return forge.Project{}, apperr.Unavailable("github get repository %s: empty response", path)
	}
	return project(repo), nil
}

// Branches lists a repository's branches. opt.Search keeps the branches whose name
// contains it, from the page GitHub returned (GitHub has no branch name filter).
func (c *Client) Branches(ctx context.Context, path string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	var branches []*gh.Branch
	resp, err := c.call(ctx, "list branches of "+path, func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		branches, r, err = c.gh.Repositories.ListBranches(ctx, owner, name, &gh.BranchListOptions{ListOptions: listOptions(opt)})
		return r, err
	})
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Ref, 0, len(branches))
	for _, b := range branches {
		if b == nil || !matches(b.GetName(), opt.Search) {
			continue
		}
		out = append(out, forge.Ref{Kind: forge.Branch, Name: b.GetName(), Commit: b.GetCommit().GetSHA(), Protected: b.GetProtected()})
	}
	return out, pageInfo(resp), nil
}

// Tags lists a repository's tags (GET /repos/:o/:r/tags), newest first as GitHub orders
// them. Commit is the commit a tag points at, annotated or not. opt.Search filters as in
// Branches.
func (c *Client) Tags(ctx context.Context, path string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	lo := listOptions(opt)
	var tags []*gh.RepositoryTag
	resp, err := c.call(ctx, "list tags of "+path, func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		tags, r, err = c.gh.Repositories.ListTags(ctx, owner, name, &lo)
		return r, err
	})
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Ref, 0, len(tags))
	for _, t := range tags {
		if t == nil || !matches(t.GetName(), opt.Search) {
			continue
		}
		out = append(out, forge.Ref{Kind: forge.Tag, Name: t.GetName(), Commit: t.GetCommit().GetSHA()})
	}
	return out, pageInfo(resp), nil
}

// Commits lists commits reachable from opt.Ref (a branch, tag or SHA; the default branch
// when empty), newest first. Time is the author date; URL is the commit's web page.
func (c *Client) Commits(ctx context.Context, path string, opt forge.ListOptions) ([]forge.Commit, forge.PageInfo, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	var commits []*gh.RepositoryCommit
	resp, err := c.call(ctx, "list commits of "+path, func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		commits, r, err = c.gh.Repositories.ListCommits(ctx, owner, name, &gh.CommitsListOptions{SHA: opt.Ref, ListOptions: listOptions(opt)})
		return r, err
	})
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Commit, 0, len(commits))
	for _, rc := range commits {
		if rc == nil {
			continue
		}
		author := rc.GetCommit().GetAuthor()
		out = append(out, forge.Commit{
			SHA:     rc.GetSHA(),
			Message: rc.GetCommit().GetMessage(),
			Author:  author.GetName(),
			Time:    author.GetDate().Time,
			URL:     rc.GetHTMLURL(),
		})
	}
	return out, pageInfo(resp), nil
}

// maxHookPages bounds Hooks; GitHub allows 20 hooks per event on a repository.
const maxHookPages = 10

// Hooks lists every webhook installed on a repository, following pages.
func (c *Client) Hooks(ctx context.Context, path string) ([]forge.Hook, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return nil, err
	}
	var out []forge.Hook
	lo := gh.ListOptions{Page: 1, PerPage: 100}
	for range maxHookPages {
		var hooks []*gh.Hook
		resp, err := c.call(ctx, "list hooks of "+path, func() (*gh.Response, error) {
			var (
				r   *gh.Response
				err error
			)
			hooks, r, err = c.gh.Repositories.ListHooks(ctx, owner, name, &lo)
			return r, err
		})
		if err != nil {
			return nil, err
		}
		for _, h := range hooks {
			if h != nil {
				out = append(out, hook(h))
			}
		}
		if resp == nil || resp.NextPage <= lo.Page {
			return out, nil
		}
		lo.Page = resp.NextPage
	}
	return out, nil
}

// CreateHook installs fabu's webhook: a "web" hook for push events that posts JSON signed
// with spec.Secret, over verified TLS. A secret is required: Verifier rejects every
// delivery of a hook without one.
func (c *Client) CreateHook(ctx context.Context, path string, spec forge.HookSpec) (forge.Hook, error) {
	owner, name, err := splitRepo(path)
	if err != nil {
		return forge.Hook{}, err
	}
	if u, err := url.Parse(spec.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return forge.Hook{}, apperr.Invalid("github hook URL %q must be an http(s) URL", spec.URL)
	}
	if spec.Secret == "" {
		return forge.Hook{}, apperr.Invalid("github hook for %s needs a secret", path)
	}
	req := &gh.Hook{
		Name:   gh.Ptr("web"),
		Active: gh.Ptr(true),
		Events: []string{"push"},
		Config: &gh.HookConfig{
			URL:         gh.Ptr(spec.URL),
			ContentType: gh.Ptr("json"),
			Secret:      gh.Ptr(spec.Secret),
			InsecureSSL: gh.Ptr("0"),
		},
	}
	var created *gh.Hook
	// A rate-limited POST was not processed, so call may retry it.
	_, err = c.call(ctx, "create hook on "+path, func() (*gh.Response, error) {
		var (
			r   *gh.Response
			err error
		)
		created, r, err = c.gh.Repositories.CreateHook(ctx, owner, name, req)
		return r, err
	})
	if err != nil {
		return forge.Hook{}, err
	}
	if created == nil {
		return forge.Hook{}, apperr.Unavailable("github create hook on %s: empty response", path)
	}
	return hook(created), nil
}

// DeleteHook removes a webhook by its ID. A hook that is already gone is not_found.
func (c *Client) DeleteHook(ctx context.Context, path, hookID string) error {
	owner, name, err := splitRepo(path)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(hookID, 10, 64)
	if err != nil || id <= 0 {
		return apperr.Invalid("github hook id %q is not a positive integer", hookID)
	}
	_, err = c.call(ctx, "delete hook "+hookID+" of "+path, func() (*gh.Response, error) {
		return c.gh.Repositories.DeleteHook(ctx, owner, name, id)
	})
	return err
}

func project(r *gh.Repository) forge.Project {
	return forge.Project{
		ID:            strconv.FormatInt(r.GetID(), 10),
		Path:          r.GetFullName(),
		Name:          r.GetName(),
		Namespace:     r.GetOwner().GetLogin(),
		Description:   r.GetDescription(),
		DefaultBranch: r.GetDefaultBranch(),
		HTTPURL:       r.GetCloneURL(),
		SSHURL:        r.GetSSHURL(),
		WebURL:        r.GetHTMLURL(),
		Archived:      r.GetArchived(),
		UpdatedAt:     r.GetUpdatedAt().Time,
	}
}

func hook(h *gh.Hook) forge.Hook {
	out := forge.Hook{
		ID:     strconv.FormatInt(h.GetID(), 10),
		URL:    h.GetConfig().GetURL(),
		Events: h.Events,
		Active: h.GetActive(),
	}
	// last_response: {"code": 200, "status": "active", "message": "OK"}; code is null
	// before the first delivery and status "unused".
	if code, ok := h.LastResponse["code"].(float64); ok && code >= 0 && code < 1000 {
		out.LastStatus = int(code)
	}
	var words []string
	for _, k := range []string{"status", "message"} {
		if v, ok := h.LastResponse[k].(string); ok && v != "" {
			words = append(words, v)
		}
	}
	out.LastResult = clip(strings.Join(words, ": "), 200)
	return out
}

// repoSegment is what GitHub allows in owner and repository names. go-github puts them
// into the request path unescaped, so anything else must never reach it.
var repoSegment = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// splitRepo checks an "owner/name" path.
func splitRepo(path string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(path, "/")
	if !ok || !repoSegment.MatchString(owner) || !repoSegment.MatchString(name) ||
		owner == "." || owner == ".." || name == "." || name == ".." {
		return "", "", apperr.Invalid("github repository %q is not owner/name", path)
	}
	return owner, name, nil
}

// listOptions turns forge list options into GitHub's: page from 1, per_page at most 100,
// GitHub's default of 30 when unset.
func listOptions(opt forge.ListOptions) gh.ListOptions {
	page, per := opt.Page, opt.PerPage
	if page < 1 {
		page = 1
	}
	if per < 1 {
		per = 30
	}
	if per > 100 {
		per = 100
	}
	return gh.ListOptions{Page: page, PerPage: per}
}

// pageInfo reads the next page from the Link header, as go-github parsed it.
func pageInfo(resp *gh.Response) forge.PageInfo {
	if resp == nil {
		return forge.PageInfo{}
	}
	return forge.PageInfo{NextPage: resp.NextPage}
}

func matches(s, search string) bool {
	return search == "" || strings.Contains(strings.ToLower(s), strings.ToLower(search))
}
