package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/httpx"
)

// A project's git features, kept by the builder (services/builder gitmerge.go and
// gitactions.go): refs merged into each run's commit before building, and the opt-in
// actions after a successful deploy. The API validates them as the builder will.

// maxMergeRefs bounds a project's merge refs, as the builder does.
const maxMergeRefs = 10

// Merge modes of GitActionsBody.MergeMode.
const (
	mergeModeFastForward = "ff-only"
	mergeModeMerge       = "merge"
)

// GitActionsBody are a project's post-success git actions: push a tag named by the
// template Tag ({{date}}, {{time}}, {{run}}, {{commit}}, {{project}}), and/or merge the
// built commit into MergeInto, fast-forward only (default) or with a merge commit.
type GitActionsBody struct {
	Tag       string `json:"tag,omitempty"`
	MergeInto string `json:"merge_into,omitempty"`
	MergeMode string `json:"merge_mode,omitempty"`
}

// gitSettings validates b's merge refs and git actions into m.
func (b ProjectBody) gitSettings(m *Project) error {
	m.MergeRefs, m.GitActions = "", ""
	if len(b.MergeRefs) > maxMergeRefs {
		return apperr.Invalid("project %s: %d merge_refs, at most %d allowed", b.Name, len(b.MergeRefs), maxMergeRefs)
	}
	seen := map[string]bool{}
	for _, r := range b.MergeRefs {
		if err := gitref.Valid(r); err != nil && gitref.ValidCommit(r) != nil {
			return apperr.Invalid("project %s: merge_refs: %v", b.Name, err)
		}
		if seen[r] {
			return apperr.Invalid("project %s: merge_refs lists %q twice", b.Name, r)
		}
		seen[r] = true
	}
	if len(b.MergeRefs) > 0 {
		raw, err := json.Marshal(b.MergeRefs)
		if err != nil {
			return err
		}
		m.MergeRefs = string(raw)
	}
	a := b.GitActions
	if a == nil || (a.Tag == "" && a.MergeInto == "") {
		if a != nil && a.MergeMode != "" {
			return apperr.Invalid("project %s: git_actions.merge_mode needs merge_into", b.Name)
		}
		return nil
	}
	a.Tag, a.MergeInto = strings.TrimSpace(a.Tag), strings.TrimSpace(a.MergeInto)
	if a.Tag != "" {
		if err := gitref.ValidTagTemplate(a.Tag); err != nil {
			return apperr.Invalid("project %s: git_actions.tag: %v", b.Name, err)
		}
	}
	if a.MergeInto != "" {
		if err := gitref.Valid(a.MergeInto); err != nil {
			return apperr.Invalid("project %s: git_actions.merge_into: %v", b.Name, err)
		}
		if gitref.IsFullCommit(a.MergeInto) || strings.HasPrefix(a.MergeInto, "refs/") {
			return apperr.Invalid("project %s: git_actions.merge_into %q must be a branch name (without refs/heads/)", b.Name, a.MergeInto)
		}
	}
	switch a.MergeMode {
	case "":
		if a.MergeInto != "" {
			a.MergeMode = mergeModeFastForward
		}
	case mergeModeFastForward, mergeModeMerge:
		if a.MergeInto == "" {
			return apperr.Invalid("project %s: git_actions.merge_mode needs merge_into", b.Name)
		}
	default:
		return apperr.Invalid("project %s: git_actions.merge_mode %q is not %s or %s", b.Name, a.MergeMode, mergeModeFastForward, mergeModeMerge)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	m.GitActions = string(raw)
	return nil
}

// mergeRefsOf returns m's merge refs for the API: never nil.
func mergeRefsOf(m Project) []string {
	refs := []string{}
	if m.MergeRefs != "" {
		_ = json.Unmarshal([]byte(m.MergeRefs), &refs) // written by gitSettings
	}
	return refs
}

// gitActionsOf returns m's post-success actions, nil when it has none.
func gitActionsOf(m Project) *GitActionsBody {
	if m.GitActions == "" {
		return nil
	}
	var a GitActionsBody
	if err := json.Unmarshal([]byte(m.GitActions), &a); err != nil {
		return nil
	}
	return &a
}

// RunGitBody is what a run merged before building and what its post-success git actions
// did (GET /runs/:id/git). Commits are full ids; ActionsState is "" (none ran), running,
// done or warning.
type RunGitBody struct {
	BaseCommit   string            `json:"base_commit,omitempty"`
	MergedCommit string            `json:"merged_commit,omitempty"`
	MergedRefs   []json.RawMessage `json:"merged_refs"`
	ActionsState string            `json:"actions_state"`
	Actions      []json.RawMessage `json:"actions"`
	UpdatedAt    *time.Time        `json:"updated_at,omitempty"`
}

type runGitRow struct {
	RunID        string
	BaseCommit   string
	MergedCommit string
	MergedRefs   string
	ActionsState string
	Actions      string
	UpdatedAt    time.Time
}

func (runGitRow) TableName() string { return "run_git" }

// getRunGit answers GET /runs/:id/git. A run that merged nothing and ran no actions has
// an empty body, not a 404, once the run exists.
func (s *Service) getRunGit(c *gin.Context) {
	ctx := c.Request.Context()
	var n int64
	if err := s.db.WithContext(ctx).Table("runs").Where("id = ?", c.Param("id")).Count(&n).Error; err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if n == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("run %s not found", c.Param("id")))
		return
	}
	out := RunGitBody{MergedRefs: []json.RawMessage{}, Actions: []json.RawMessage{}}
	var row runGitRow
	err := s.db.WithContext(ctx).Where("run_id = ?", c.Param("id")).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
	case err != nil:
		httpx.Fail(c, s.log, err)
		return
	default:
		out.BaseCommit, out.MergedCommit, out.ActionsState = row.BaseCommit, row.MergedCommit, row.ActionsState
		out.UpdatedAt = &row.UpdatedAt
		if row.MergedRefs != "" {
			_ = json.Unmarshal([]byte(row.MergedRefs), &out.MergedRefs) // written by the builder
		}
		if row.Actions != "" {
			_ = json.Unmarshal([]byte(row.Actions), &out.Actions)
		}
	}
	c.JSON(http.StatusOK, out)
}
