package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/httpx"
)

// RefBody is a branch, tag or commit offered by the deploy picker. For a commit, Name and
// Commit are both its SHA.
type RefBody struct {
	Kind      string     `json:"kind"`
	Name      string     `json:"name"`
	Commit    string     `json:"commit"`
	Protected bool       `json:"protected,omitempty"`
	Message   string     `json:"message,omitempty"`
	Author    string     `json:"author,omitempty"`
	Time      *time.Time `json:"time,omitempty"`
	URL       string     `json:"url,omitempty"`
}

// RefPage is one page of live refs; NextPage is 0 on the last page.
type RefPage struct {
	Kind     string    `json:"kind"`
	Refs     []RefBody `json:"refs"`
	Page     int       `json:"page"`
	NextPage int       `json:"next_page"`
}

// refsPerPage is the size of a page of refs in the deploy picker.
const refsPerPage = 50

// listRefs answers GET /projects/:id/refs?kind=branch|tag|commit&search=&page=&ref=, live
// from the project's platform. Commits are listed from ref (default: the project's branch).
func (s *Service) listRefs(c *gin.Context) {
	ctx := c.Request.Context()
	kind := c.DefaultQuery("kind", "branch")
	if kind != "branch" && kind != "tag" && kind != "commit" {
		httpx.Fail(c, s.log, apperr.Invalid("kind %q is not branch, tag or commit", kind))
		return
	}
	page, err := queryInt(c, "page", 1, 1, 10_000)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	search := strings.TrimSpace(c.Query("search"))
	if len(search) > 200 {
		httpx.Fail(c, s.log, apperr.Invalid("search is longer than 200 bytes"))
		return
	}
	p, err := s.findProjectForge(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	client, conn, err := s.projectClient(ctx, p)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	opt := forge.ListOptions{Page: page, PerPage: refsPerPage, Search: search}
	out := RefPage{Kind: kind, Refs: []RefBody{}, Page: page}
	if kind == "commit" {
		if opt.Ref = c.Query("ref"); opt.Ref == "" {
			m, err := s.findProject(ctx, p.ID)
			if err != nil {
				httpx.Fail(c, s.log, err)
				return
			}
			opt.Ref = m.Branch
		}
		if err := gitref.Valid(opt.Ref); err != nil {
			httpx.Fail(c, s.log, apperr.Invalid("ref: %v", err))
			return
		}
	}
	// GitHub and Gitee cannot search branches or tags, and no platform searches commit
	// messages: those filters apply to a page at a time. So a search goes on to the next
	// pages until it has a page of matches, the platform has no more, or searchPages pages
	// were read; next_page then says where the next search continues.
	var info forge.PageInfo
	for read := 1; ; read++ {
		var found []RefBody
		found, info, err = refsPage(ctx, client, p.RepoPath, kind, search, opt)
		if err != nil {
			httpx.Fail(c, s.log, platformError(conn.Name, err))
			return
		}
		out.Refs = append(out.Refs, found...)
		if search == "" || info.NextPage <= opt.Page || len(out.Refs) >= refsPerPage || read >= searchPages {
			break
		}
		opt.Page = info.NextPage
	}
	out.NextPage = info.NextPage
	c.JSON(http.StatusOK, out)
}

// searchPages is how many platform pages one search request reads at most.
const searchPages = 10

// refsPage reads one page of kind from the platform and keeps what matches search.
func refsPage(ctx context.Context, client forge.Client, repo, kind, search string, opt forge.ListOptions) ([]RefBody, forge.PageInfo, error) {
	var out []RefBody
	switch kind {
	case "branch", "tag":
		list := client.Branches
		if kind == "tag" {
			list = client.Tags
		}
		refs, info, err := list(ctx, repo, opt)
		for _, r := range refs {
			out = append(out, RefBody{Kind: kind, Name: r.Name, Commit: r.Commit, Protected: r.Protected})
		}
		return out, info, err
	}
	opt.Search = ""
	commits, info, err := client.Commits(ctx, repo, opt)
	for _, cm := range commits {
		if search != "" && !strings.HasPrefix(cm.SHA, search) && !strings.Contains(strings.ToLower(cm.Message), strings.ToLower(search)) {
			continue
		}
		b := RefBody{Kind: kind, Name: cm.SHA, Commit: cm.SHA, Message: cm.Message, Author: cm.Author, URL: cm.URL}
		if !cm.Time.IsZero() {
			t := cm.Time
			b.Time = &t
		}
		out = append(out, b)
	}
	return out, info, err
}
