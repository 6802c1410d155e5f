package gitee

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// repo is the part of Gitee's repository object fabu reads.
type repo struct {
	ID            int64  `json:"id"`
	FullName      string `json:"full_name"`
	Path          string `json:"path"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	DefaultBranch string `json:"default_branch"`
	HTMLURL       string `json:"html_url"` // the clone URL, ending in .git
	SSHURL        string `json:"ssh_url"`
	Archived      bool   `json:"archived"` // not in v5 samples; read when an installation sends it
	UpdatedAt     string `json:"updated_at"`
	Namespace     struct {
		Path string `json:"path"`
	} `json:"namespace"`
}

func (r repo) project() forge.Project {
	p := forge.Project{
		ID:            strconv.FormatInt(r.ID, 10),
		Path:          r.FullName,
		Name:          r.Name,
		Namespace:     r.Namespace.Path,
		Description:   r.Description,
		DefaultBranch: r.DefaultBranch,
		SSHURL:        r.SSHURL,
		Archived:      r.Archived,
		UpdatedAt:     parseTime(r.UpdatedAt),
	}
	if r.Namespace.Path != "" && r.Path != "" {
		p.Path = r.Namespace.Path + "/" + r.Path
	}
	if r.HTMLURL != "" {
		p.WebURL = strings.TrimSuffix(r.HTMLURL, ".git")
		p.HTTPURL = p.WebURL + ".git"
	}
	return p
}

// Projects lists the repositories the token's user can reach (GET /user/repos). Search is
// sent as Gitee's q and also applied here to the path, case-insensitively, so that a
// server that ignores q still filters.
func (c *Client) Projects(ctx context.Context, opt forge.ListOptions) ([]forge.Project, forge.PageInfo, error) {
	q, page := pageQuery(opt)
	if opt.Search != "" {
		q.Set("q", opt.Search)
	}
	var rs []repo
	h, err := c.do(ctx, call{method: http.MethodGet, path: "/user/repos", query: q}, &rs)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Project, 0, len(rs))
	for _, r := range rs {
		p := r.project()
		if matches(p.Path, opt.Search) {
			out = append(out, p)
		}
	}
	return out, nextPage(h, page), nil
}

// Project returns one repository by its owner/repo path.
func (c *Client) Project(ctx context.Context, path string) (forge.Project, error) {
	rp, err := repoPath(path)
	if err != nil {
		return forge.Project{}, err
	}
	var r repo
	if _, err := c.do(ctx, call{method: http.MethodGet, path: rp}, &r); err != nil {
		return forge.Project{}, err
	}
	return r.project(), nil
}

// Branches lists a repository's branches. Gitee has no branch search, so Search filters
// the page here by substring.
func (c *Client) Branches(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	return c.refs(ctx, project, "/branches", forge.Branch, opt)
}

// Tags lists a repository's tags; Search filters the page here by substring.
func (c *Client) Tags(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	return c.refs(ctx, project, "/tags", forge.Tag, opt)
}

func (c *Client) refs(ctx context.Context, project, sub string, kind forge.RefKind, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	rp, err := repoPath(project)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	q, page := pageQuery(opt)
	var rs []struct {
		Name      string `json:"name"`
		Protected bool   `json:"protected"`
		Commit    struct {
			SHA string `json:"sha"`
		} `json:"commit"`
	}
	h, err := c.do(ctx, call{method: http.MethodGet, path: rp + sub, query: q}, &rs)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Ref, 0, len(rs))
	for _, r := range rs {
		if matches(r.Name, opt.Search) {
			out = append(out, forge.Ref{Kind: kind, Name: r.Name, Commit: r.Commit.SHA, Protected: r.Protected})
		}
	}
	return out, nextPage(h, page), nil
}

// Commits lists commits reachable from opt.Ref (sent as sha), newest first; an empty Ref
// means the default branch.
func (c *Client) Commits(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Commit, forge.PageInfo, error) {
	rp, err := repoPath(project)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	q, page := pageQuery(opt)
	if opt.Ref != "" {
		q.Set("sha", opt.Ref)
	}
	var rs []struct {
		SHA     string `json:"sha"`
		HTMLURL string `json:"html_url"`
		Commit  struct {
			Message string `json:"message"`
			Author  struct {
				Name string `json:"name"`
				Date string `json:"date"`
			} `json:"author"`
			Committer struct {
				Date string `json:"date"`
			} `json:"committer"`
		} `json:"commit"`
	}
	h, err := c.do(ctx, call{method: http.MethodGet, path: rp + "/commits", query: q}, &rs)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	out := make([]forge.Commit, 0, len(rs))
	for _, r := range rs {
		t := parseTime(r.Commit.Committer.Date)
		if t.IsZero() {
			t = parseTime(r.Commit.Author.Date)
		}
		out = append(out, forge.Commit{SHA: r.SHA, Message: r.Commit.Message,
			Author: r.Commit.Author.Name, Time: t, URL: r.HTMLURL})
	}
	return out, nextPage(h, page), nil
}

// hook is Gitee's hook object without its "password", which Gitee echoes in clear text:
// leaving the field out of the type keeps it out of every value fabu holds.
type hook struct {
	ID                  int64  `json:"id"`
	URL                 string `json:"url"`
	PushEvents          bool   `json:"push_events"`
	TagPushEvents       bool   `json:"tag_push_events"`
	IssuesEvents        bool   `json:"issues_events"`
	NoteEvents          bool   `json:"note_events"`
	MergeRequestsEvents bool   `json:"merge_requests_events"`
	// The latest delivery as Gitee saw it: the answer's status and body (Gitee also echoes
	// the hook's password, which fabu never reads).
	Result     string `json:"result"`
	ResultCode int    `json:"result_code"`
}

// hook maps to forge.Hook; Gitee hooks have no active flag, so an installed hook is active.
// Events use Gitee's names without "_events".
func (h hook) hook() forge.Hook {
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.URL, Active: true, Events: []string{},
		LastResult: clip(strings.Join(strings.Fields(h.Result), " "), 200)}
	if h.ResultCode > 0 && h.ResultCode < 1000 {
		out.LastStatus = h.ResultCode
	}
	for _, e := range []struct {
		on   bool
		name string
	}{
		{h.PushEvents, "push"}, {h.TagPushEvents, "tag_push"}, {h.IssuesEvents, "issues"},
		{h.NoteEvents, "note"}, {h.MergeRequestsEvents, "merge_requests"},
	} {
		if e.on {
			out.Events = append(out.Events, e.name)
		}
	}
	return out
}

// Hooks lists a repository's webhooks, first 100 (Gitee's page limit; a repository has far
// fewer).
func (c *Client) Hooks(ctx context.Context, project string) ([]forge.Hook, error) {
	rp, err := repoPath(project)
	if err != nil {
		return nil, err
	}
	var hs []hook
	q := url.Values{"page": {"1"}, "per_page": {"100"}}
	if _, err := c.do(ctx, call{method: http.MethodGet, path: rp + "/hooks", query: q}, &hs); err != nil {
		return nil, err
	}
	out := make([]forge.Hook, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.hook())
	}
	return out, nil
}

// createHook is the body of POST /repos/:owner/:repo/hooks.
type createHook struct {
	URL                 string `json:"url"`
	EncryptionType      int    `json:"encryption_type"` // 1: signature mode
	Password            string `json:"password"`
	PushEvents          bool   `json:"push_events"`
	TagPushEvents       bool   `json:"tag_push_events"`
	IssuesEvents        bool   `json:"issues_events"`
	NoteEvents          bool   `json:"note_events"`
	MergeRequestsEvents bool   `json:"merge_requests_events"`
}

// CreateHook installs a push and tag-push webhook in signature mode (encryption_type 1),
// the mode a zero Verifier checks: Gitee then sends an HMAC of a timestamp instead of the
// secret itself.
func (c *Client) CreateHook(ctx context.Context, project string, spec forge.HookSpec) (forge.Hook, error) {
	rp, err := repoPath(project)
	if err != nil {
		return forge.Hook{}, err
	}
	if u, err := url.Parse(spec.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return forge.Hook{}, apperr.Invalid("gitee hook URL must be an absolute http(s) URL")
	}
	if spec.Secret == "" {
		return forge.Hook{}, apperr.Invalid("gitee hook needs a secret: an unsigned hook never verifies")
	}
	body := createHook{URL: spec.URL, EncryptionType: 1, Password: spec.Secret, PushEvents: true, TagPushEvents: true}
	var h hook
	if _, err := c.do(ctx, call{method: http.MethodPost, path: rp + "/hooks", body: body}, &h); err != nil {
		return forge.Hook{}, err
	}
	return h.hook(), nil
}

// DeleteHook removes a webhook; a hook that is already gone is a not_found error.
func (c *Client) DeleteHook(ctx context.Context, project, hookID string) error {
	rp, err := repoPath(project)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(hookID, 10, 64); err != nil {
		return apperr.Invalid("gitee hook id %q is not a number", hookID)
	}
	_, err = c.do(ctx, call{method: http.MethodDelete, path: rp + "/hooks/" + hookID}, nil)
	return err
}

func matches(s, search string) bool {
	return search == "" || strings.Contains(strings.ToLower(s), strings.ToLower(search))
}

// parseTime reads Gitee's RFC 3339 times; anything else is the zero time, not an error,
// since a bad date must not hide the rest of a listing.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
