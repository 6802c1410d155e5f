package gitlab

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// maxPerPage is GitLab's page size limit.
const maxPerPage = 100

// maxHookPages bounds Hooks: a project holds at most a few dozen hooks, so a server that
// keeps announcing a next page is broken and must not keep fabu looping.
const maxHookPages = 20

// Projects lists the projects the token's user is a member of, optionally filtered by
// opt.Search (GitLab matches it against names and paths).
func (c *Client) Projects(ctx context.Context, opt forge.ListOptions) ([]forge.Project, forge.PageInfo, error) {
	lo, err := listOptions(opt)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	o := &gl.ListProjectsOptions{ListOptions: lo, Membership: gl.Ptr(true)}
	if opt.Search != "" {
		o.Search = gl.Ptr(opt.Search)
	}
	ps, resp, err := c.api.Projects.ListProjects(o, c.call(ctx, http.MethodGet))
	if err != nil {
		return nil, forge.PageInfo{}, apiError(err, "list projects")
	}
	out := make([]forge.Project, 0, len(ps))
	for _, p := range ps {
		if p != nil {
			out = append(out, project(p))
		}
	}
	return out, pageInfo(resp), nil
}

// Project returns one project by its full path (group/sub/name) or numeric ID.
func (c *Client) Project(ctx context.Context, path string) (forge.Project, error) {
	if err := checkProject(path); err != nil {
		return forge.Project{}, err
	}
	p, _, err := c.api.Projects.GetProject(path, nil, c.call(ctx, http.MethodGet))
	if err != nil {
		return forge.Project{}, apiError(err, "get project %s", path)
	}
	return project(p), nil
}

// Branches lists a project's branches, optionally those whose name contains opt.Search.
func (c *Client) Branches(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	lo, err := listOptions(opt)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	if err := checkProject(project); err != nil {
		return nil, forge.PageInfo{}, err
	}
	o := &gl.ListBranchesOptions{ListOptions: lo}
	if opt.Search != "" {
		o.Search = gl.Ptr(opt.Search)
	}
	bs, resp, err := c.api.Branches.ListBranches(project, o, c.call(ctx, http.MethodGet))
	if err != nil {
		return nil, forge.PageInfo{}, apiError(err, "list branches of %s", project)
	}
	out := make([]forge.Ref, 0, len(bs))
	for _, b := range bs {
		if b != nil {
			out = append(out, forge.Ref{Kind: forge.Branch, Name: b.Name, Commit: commitID(b.Commit), Protected: b.Protected})
		}
	}
	return out, pageInfo(resp), nil
}

// Tags lists a project's tags, optionally those whose name contains opt.Search.
func (c *Client) Tags(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Ref, forge.PageInfo, error) {
	lo, err := listOptions(opt)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	if err := checkProject(project); err != nil {
		return nil, forge.PageInfo{}, err
	}
	o := &gl.ListTagsOptions{ListOptions: lo}
	if opt.Search != "" {
		o.Search = gl.Ptr(opt.Search)
	}
	ts, resp, err := c.api.Tags.ListTags(project, o, c.call(ctx, http.MethodGet))
	if err != nil {
		return nil, forge.PageInfo{}, apiError(err, "list tags of %s", project)
	}
	out := make([]forge.Ref, 0, len(ts))
	for _, t := range ts {
		if t != nil {
			out = append(out, forge.Ref{Kind: forge.Tag, Name: t.Name, Commit: commitID(t.Commit), Protected: t.Protected})
		}
	}
	return out, pageInfo(resp), nil
}

// Commits lists a project's commits, newest first, from opt.Ref (a branch, tag or SHA; empty
// means the default branch).
func (c *Client) Commits(ctx context.Context, project string, opt forge.ListOptions) ([]forge.Commit, forge.PageInfo, error) {
	lo, err := listOptions(opt)
	if err != nil {
		return nil, forge.PageInfo{}, err
	}
	if err := checkProject(project); err != nil {
		return nil, forge.PageInfo{}, err
	}
	o := &gl.ListCommitsOptions{ListOptions: lo}
	if opt.Ref != "" {
		o.RefName = gl.Ptr(opt.Ref)
	}
	cs, resp, err := c.api.Commits.ListCommits(project, o, c.call(ctx, http.MethodGet))
	if err != nil {
		return nil, forge.PageInfo{}, apiError(err, "list commits of %s", project)
	}
	out := make([]forge.Commit, 0, len(cs))
	for _, cm := range cs {
		if cm != nil {
			out = append(out, commit(cm))
		}
	}
	return out, pageInfo(resp), nil
}

// Hooks lists all webhooks of a project, following pages.
func (c *Client) Hooks(ctx context.Context, project string) ([]forge.Hook, error) {
	if err := checkProject(project); err != nil {
		return nil, err
	}
	var out []forge.Hook
	o := &gl.ListProjectHooksOptions{ListOptions: gl.ListOptions{PerPage: maxPerPage, Page: 1}}
	for range maxHookPages {
		hs, resp, err := c.api.Projects.ListProjectHooks(project, o, c.call(ctx, http.MethodGet))
		if err != nil {
			return nil, apiError(err, "list hooks of %s", project)
		}
		for _, h := range hs {
			if h != nil {
				out = append(out, hook(h))
			}
		}
		next := pageInfo(resp).NextPage
		if next <= int(o.Page) {
			return out, nil
		}
		o.Page = int64(next)
	}
	return nil, apperr.New(apperr.CodeUnavailable, "gitlab: list hooks of %s: more than %d pages", project, maxHookPages)
}

// CreateHook installs a webhook for push and tag push events, with spec.Secret as the token
// GitLab sends back in X-Gitlab-Token. TLS verification stays on unless the URL is http.
// GitLab never returns the token, so the Hook cannot show it.
func (c *Client) CreateHook(ctx context.Context, project string, spec forge.HookSpec) (forge.Hook, error) {
	if err := checkProject(project); err != nil {
		return forge.Hook{}, err
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return forge.Hook{}, apperr.Invalid("gitlab: hook URL %q must be an absolute http(s) URL", spec.URL)
	}
	if spec.Secret == "" {
		return forge.Hook{}, apperr.Invalid("gitlab: a hook needs a secret token")
	}
	if strings.ContainsAny(spec.Secret, "\r\n") {
		// GitLab strips line breaks before sending the token, so it would never match.
		return forge.Hook{}, apperr.Invalid("gitlab: a hook secret must not contain line breaks")
	}
	o := &gl.AddProjectHookOptions{
		URL:                   gl.Ptr(spec.URL),
		Token:                 gl.Ptr(spec.Secret),
		PushEvents:            gl.Ptr(true),
		TagPushEvents:         gl.Ptr(true),
		EnableSSLVerification: gl.Ptr(u.Scheme != "http"),
	}
	h, _, err := c.api.Projects.AddProjectHook(project, o, c.call(ctx, http.MethodPost))
	if err != nil {
		return forge.Hook{}, apiError(err, "create hook on %s", project)
	}
	return hook(h), nil
}

// DeleteHook removes a webhook. A hook that is already gone is not an error: deleting is
// idempotent, as GitLab's own API is.
func (c *Client) DeleteHook(ctx context.Context, project, hookID string) error {
	if err := checkProject(project); err != nil {
		return err
	}
	id, err := strconv.ParseInt(hookID, 10, 64)
	if err != nil || id <= 0 {
		return apperr.Invalid("gitlab: hook ID %q is not a positive number", hookID)
	}
	_, err = c.api.Projects.DeleteProjectHook(project, id, c.call(ctx, http.MethodDelete))
	if err != nil && !errors.Is(err, gl.ErrNotFound) {
		return apiError(err, "delete hook %d of %s", id, project)
	}
	return nil
}

// call gives one API call its context and retry budget.
func (c *Client) call(ctx context.Context, method string) gl.RequestOptionFunc {
	return gl.WithContext(c.retry.begin(ctx, method))
}

func listOptions(opt forge.ListOptions) (gl.ListOptions, error) {
	if opt.Page < 0 || opt.PerPage < 0 {
		return gl.ListOptions{}, apperr.Invalid("gitlab: page and per_page must not be negative")
	}
	lo := gl.ListOptions{Page: int64(max(opt.Page, 1)), PerPage: int64(min(opt.PerPage, maxPerPage))}
	if lo.PerPage == 0 {
		lo.PerPage = maxPerPage
	}
	return lo, nil
}

// checkProject refuses an empty project or one that would change the request path after
// escaping (client-go escapes "/" but a NUL or newline is never a GitLab path).
func checkProject(p string) error {
	if p == "" || strings.Trim(p, "/") != p {
		return apperr.Invalid("gitlab: project %q must be a numeric ID or group/name", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return apperr.Invalid("gitlab: project %q contains control characters", p)
		}
	}
	return nil
}

// pageInfo reads the next page from X-Next-Page, or from Link rel="next" when GitLab (or a
// proxy) sends only that.
func pageInfo(resp *gl.Response) forge.PageInfo {
	if resp == nil {
		return forge.PageInfo{}
	}
	if resp.NextPage > 0 {
		return forge.PageInfo{NextPage: int(resp.NextPage)}
	}
	if resp.NextLink != "" {
		if u, err := url.Parse(resp.NextLink); err == nil {
			if n, err := strconv.Atoi(u.Query().Get("page")); err == nil && n > 0 {
				return forge.PageInfo{NextPage: n}
			}
		}
	}
	return forge.PageInfo{}
}

func project(p *gl.Project) forge.Project {
	out := forge.Project{
		ID:            strconv.FormatInt(p.ID, 10),
		Path:          p.PathWithNamespace,
		Name:          p.Name,
		Description:   p.Description,
		DefaultBranch: p.DefaultBranch,
		HTTPURL:       p.HTTPURLToRepo,
		SSHURL:        p.SSHURLToRepo,
		WebURL:        p.WebURL,
		Archived:      p.Archived,
		UpdatedAt:     latest(p.UpdatedAt, p.LastActivityAt),
	}
	if p.Namespace != nil {
		out.Namespace = p.Namespace.FullPath
	} else if i := strings.LastIndexByte(p.PathWithNamespace, '/'); i > 0 {
		out.Namespace = p.PathWithNamespace[:i]
	}
	return out
}

func latest(ts ...*time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t != nil && t.After(out) {
			out = *t
		}
	}
	return out
}

func commitID(c *gl.Commit) string {
	if c == nil {
		return ""
	}
	return c.ID
}

func commit(c *gl.Commit) forge.Commit {
	out := forge.Commit{SHA: c.ID, Message: c.Message, Author: c.AuthorName, URL: c.WebURL}
	switch {
	case c.AuthoredDate != nil:
		out.Time = *c.AuthoredDate
	case c.CommittedDate != nil:
		out.Time = *c.CommittedDate
	case c.CreatedAt != nil:
		out.Time = *c.CreatedAt
	}
	return out
}

func hook(h *gl.ProjectHook) forge.Hook {
	var ev []string
	for _, e := range []struct {
		on   bool
		name string
	}{
		{h.PushEvents, "push"}, {h.TagPushEvents, "tag_push"}, {h.MergeRequestsEvents, "merge_requests"},
		{h.IssuesEvents, "issues"}, {h.NoteEvents, "note"}, {h.JobEvents, "job"},
		{h.PipelineEvents, "pipeline"}, {h.WikiPageEvents, "wiki_page"}, {h.DeploymentEvents, "deployment"},
		{h.ReleasesEvents, "releases"},
	} {
		if e.on {
			ev = append(ev, e.name)
		}
	}
	// GitLab disables failing hooks: alert_status is "executable" (or absent on old
	// versions) for a hook that still fires.
	active := h.AlertStatus == "" || h.AlertStatus == "executable"
	out := forge.Hook{ID: strconv.FormatInt(h.ID, 10), URL: h.URL, Events: ev, Active: active, DisabledUntil: h.DisabledUntil}
	if !active {
		out.LastResult = strings.ReplaceAll(h.AlertStatus, "_", " ") // "disabled", "temporarily disabled"
	}
	return out
}
