package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// ForgeRepo is a repository a sync found on a connection, as stored in forge_repos.
// Gone marks one the platform no longer lists; Removed one a user removed from fabu, which
// later syncs leave removed.
type ForgeRepo struct {
	ID            string `gorm:"primaryKey"`
	ConnectionID  string
	RemoteID      string
	Path          string
	Name          string
	Namespace     string
	DefaultBranch string
	HTTPURL       string `gorm:"column:http_url"`
	SSHURL        string `gorm:"column:ssh_url"`
	WebURL        string `gorm:"column:web_url"`
	Archived      bool
	Gone          bool
	Removed       bool
	FirstSeenAt   time.Time
	LastSeenAt    time.Time
}

// TableName tells GORM the table.
func (ForgeRepo) TableName() string { return "forge_repos" }

// RepoBody is a synced repository as the API shows it.
type RepoBody struct {
	ID            string    `json:"id"`
	RemoteID      string    `json:"remote_id"`
	Path          string    `json:"path"`
	Name          string    `json:"name"`
	Namespace     string    `json:"namespace"`
	DefaultBranch string    `json:"default_branch"`
	HTTPURL       string    `json:"http_url"`
	SSHURL        string    `json:"ssh_url"`
	WebURL        string    `json:"web_url"`
	Archived      bool      `json:"archived"`
	Gone          bool      `json:"gone"`
	Removed       bool      `json:"removed"`
	FirstSeenAt   time.Time `json:"first_seen_at"`
	LastSeenAt    time.Time `json:"last_seen_at"`
}

func repoBody(r ForgeRepo) RepoBody {
	return RepoBody{ID: r.ID, RemoteID: r.RemoteID, Path: r.Path, Name: r.Name, Namespace: r.Namespace,
		DefaultBranch: r.DefaultBranch, HTTPURL: r.HTTPURL, SSHURL: r.SSHURL, WebURL: r.WebURL, Archived: r.Archived,
		Gone: r.Gone, Removed: r.Removed, FirstSeenAt: r.FirstSeenAt, LastSeenAt: r.LastSeenAt}
}

// SyncResult counts what one sync changed: repositories first seen, changed (or back after
// being gone), and newly gone; Seen is how many the platform listed.
type SyncResult struct {
	Seen    int `json:"seen"`
	Created int `json:"created"`
	Updated int `json:"updated"`
	Gone    int `json:"gone"`
}

// Bounds of one walk over a connection's repositories.
const (
	syncPerPage  = 100
	syncMaxPages = 1000 // 100 000 repositories: a server announcing more pages is broken
)

// syncConnection walks every page of a connection's repositories and records them. Only a
// complete walk marks repositories gone; a failed one changes no repository and records
// the error on the connection. Two syncs of one connection at once (a manual one and the
// periodic one, or two gateways) are harmless: each writes in one transaction, a repository
// both create is created once, and neither marks gone what the other has just seen.
func (s *Service) syncConnection(ctx context.Context, id string) (SyncResult, error) {
	conn, err := s.findConnection(ctx, id)
	if err != nil {
		return SyncResult{}, err
	}
	projects, err := s.walkProjects(ctx, conn)
	if err == nil {
		var res SyncResult
		res, err = s.recordSync(ctx, conn, projects)
		if err == nil {
			return res, nil
		}
	}
	if ctx.Err() != nil {
		// Shutting down is not the connection's failure.
		return SyncResult{}, err
	}
	_, msg := apperr.Public(platformError(conn.Name, err))
	if apperr.CodeOf(err) == apperr.CodeInternal {
		msg = "internal error: " + err.Error()
	}
	if uerr := s.db.WithContext(ctx).Model(&ForgeConnection{}).Where("id = ?", id).
		Updates(map[string]any{"sync_state": SyncFailed, "sync_error": truncateText(msg, 1000), "updated_at": time.Now().UTC()}).Error; uerr != nil {
		return SyncResult{}, errors.Join(err, fmt.Errorf("record failed sync of %s: %w", conn.Name, uerr))
	}
	return SyncResult{}, platformError(conn.Name, err)
}

// walkProjects lists every repository of conn, following NextPage to the end.
func (s *Service) walkProjects(ctx context.Context, conn ForgeConnection) ([]forge.Project, error) {
	client, err := s.forgeClient(conn)
	if err != nil {
		return nil, err
	}
	var all []forge.Project
	for page, n := 1, 0; ; n++ {
		if n == syncMaxPages {
			return nil, apperr.Unavailable("connection %s: more than %d pages of repositories", conn.Name, syncMaxPages)
		}
		ps, info, err := client.Projects(ctx, forge.ListOptions{Page: page, PerPage: syncPerPage})
		if err != nil {
			return nil, fmt.Errorf("list repositories of %s, page %d: %w", conn.Name, page, err)
		}
		all = append(all, ps...)
		if info.NextPage == 0 {
			return all, nil
		}
		if info.NextPage <= page {
			return nil, apperr.Unavailable("connection %s: page %d points back to page %d", conn.Name, page, info.NextPage)
		}
		page = info.NextPage
	}
}

// recordSync upserts the repositories of a complete walk by their remote ID, marks those
// it did not list gone, and records the sync as ok, in one transaction.
func (s *Service) recordSync(ctx context.Context, conn ForgeConnection, listed []forge.Project) (SyncResult, error) {
	var res SyncResult
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var existing []ForgeRepo
		if err := tx.Where("connection_id = ?", conn.ID).Find(&existing).Error; err != nil {
			return fmt.Errorf("load repositories of %s: %w", conn.Name, err)
		}
		byRemote := make(map[string]ForgeRepo, len(existing))
		for _, r := range existing {
			byRemote[r.RemoteID] = r
		}
		now := time.Now().UTC()
		seen := make(map[string]bool, len(listed))
		for _, p := range listed {
			if p.ID == "" || seen[p.ID] {
				continue // a repository listed twice (its page shifted during the walk) counts once
			}
			seen[p.ID] = true
			res.Seen++
			r, ok := byRemote[p.ID]
			next := r
			next.Path, next.Name, next.Namespace, next.DefaultBranch = p.Path, p.Name, p.Namespace, p.DefaultBranch
			next.HTTPURL, next.SSHURL, next.WebURL, next.Archived, next.Gone = p.HTTPURL, p.SSHURL, p.WebURL, p.Archived, false
			next.LastSeenAt = now
			if !ok {
				next.ID, next.ConnectionID, next.RemoteID, next.FirstSeenAt = ids.New(), conn.ID, p.ID, now
				created := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&next)
				if created.Error != nil {
					return fmt.Errorf("record repository %s: %w", p.Path, created.Error)
				}
				res.Created += int(created.RowsAffected)
				continue
			}
			if changed(r, next) {
				res.Updated++
			}
			if err := tx.Save(&next).Error; err != nil {
				return fmt.Errorf("update repository %s: %w", p.Path, err)
			}
		}
		var gone []string
		for _, r := range existing {
			if !seen[r.RemoteID] && !r.Gone {
				gone = append(gone, r.ID)
			}
		}
		for len(gone) > 0 {
			batch := gone[:min(len(gone), 500)]
			gone = gone[len(batch):]
			if err := tx.Model(&ForgeRepo{}).Where("id IN ?", batch).Update("gone", true).Error; err != nil {
				return fmt.Errorf("mark repositories of %s gone: %w", conn.Name, err)
			}
			res.Gone += len(batch)
		}
		return tx.Model(&ForgeConnection{}).Where("id = ?", conn.ID).
			Updates(map[string]any{"sync_state": SyncOK, "sync_error": "", "synced_at": now, "updated_at": now}).Error
	})
	return res, err
}

// changed reports whether a sync changes what fabu knows of a repository, apart from
// when it was last seen.
func changed(a, b ForgeRepo) bool {
	a.LastSeenAt, b.LastSeenAt = time.Time{}, time.Time{}
	return a != b
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// syncAll syncs every connection once, one after the other; a failure is recorded on its
// connection and does not stop the others.
func (s *Service) syncAll(ctx context.Context) {
	var idList []string
	if err := s.db.WithContext(ctx).Model(&ForgeConnection{}).Order("name").Pluck("id", &idList).Error; err != nil {
		if ctx.Err() == nil {
			s.log.Error("periodic sync: list connections", "err", err)
		}
		return
	}
	for _, id := range idList {
		if ctx.Err() != nil {
			return
		}
		res, err := s.syncConnection(ctx, id)
		switch {
		case apperr.Is(err, apperr.CodeNotFound):
			// Deleted meanwhile.
		case err != nil && ctx.Err() == nil:
			s.log.Warn("periodic sync failed", "connection", id, "err", err)
		case err == nil:
			s.log.Debug("periodic sync", "connection", id, "seen", res.Seen, "created", res.Created, "updated", res.Updated, "gone", res.Gone)
		}
	}
}

// startSync starts the periodic sync of every connection, at once and then every
// SyncInterval, until ctx ends. The returned function waits for it to stop.
func (s *Service) startSync(ctx context.Context) (wait func()) {
	every := s.cfg.SyncInterval
	if every == 0 {
		every = DefaultSyncInterval
	}
	done := make(chan struct{})
	if every < 0 {
		close(done)
		return func() { <-done }
	}
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.syncAll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { <-done }
}

// syncNow answers POST /connections/:id/sync: a sync now, with its counts.
func (s *Service) syncNow(c *gin.Context) {
	res, err := s.syncConnection(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// RepoPage is a page of a connection's synced repositories with the connection's sync state.
type RepoPage struct {
	Repos     []RepoBody `json:"repos"`
	Page      int        `json:"page"`
	PerPage   int        `json:"per_page"`
	Total     int64      `json:"total"`
	NextPage  int        `json:"next_page"`
	SyncState string     `json:"sync_state"`
	SyncError string     `json:"sync_error,omitempty"`
	SyncedAt  *time.Time `json:"synced_at,omitempty"`
}

// likeEscaper escapes LIKE wildcards, with \ as the escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// listRepos answers GET /connections/:id/repos?search=&page=&per_page=&include_removed=,
// from the database, sorted by path.
func (s *Service) listRepos(c *gin.Context) {
	ctx := c.Request.Context()
	conn, err := s.findConnection(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	page, err := queryInt(c, "page", 1, 1, 1_000_000)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	perPage, err := queryInt(c, "per_page", 50, 1, 200)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	q := s.db.WithContext(ctx).Model(&ForgeRepo{}).Where("connection_id = ?", conn.ID)
	switch c.Query("include_removed") {
	case "", "false", "0":
		q = q.Where("removed = ?", false)
	case "true", "1":
	default:
		httpx.Fail(c, s.log, apperr.Invalid("include_removed must be true or false"))
		return
	}
	if search := strings.TrimSpace(c.Query("search")); search != "" {
		q = q.Where(`LOWER(path) LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(strings.ToLower(search))+"%")
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("count repositories: %w", err))
		return
	}
	var rows []ForgeRepo
	if err := q.Order("path").Order("id").Offset((page - 1) * perPage).Limit(perPage).Find(&rows).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list repositories: %w", err))
		return
	}
	out := RepoPage{Repos: make([]RepoBody, len(rows)), Page: page, PerPage: perPage, Total: total,
		SyncState: conn.SyncState, SyncError: conn.SyncError, SyncedAt: conn.SyncedAt}
	for i, r := range rows {
		out.Repos[i] = repoBody(r)
	}
	if int64(page*perPage) < total {
		out.NextPage = page + 1
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) removeRepo(c *gin.Context)  { s.setRemoved(c, true) }
func (s *Service) restoreRepo(c *gin.Context) { s.setRemoved(c, false) }

// setRemoved marks a synced repository removed from fabu, or restores it.
func (s *Service) setRemoved(c *gin.Context, removed bool) {
	tx := s.db.WithContext(c.Request.Context())
	res := tx.Model(&ForgeRepo{}).Where("id = ? AND connection_id = ?", c.Param("repo_id"), c.Param("id")).Update("removed", removed)
	if res.Error != nil {
		httpx.Fail(c, s.log, fmt.Errorf("update repository: %w", res.Error))
		return
	}
	if res.RowsAffected == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("repository %s of connection %s not found", c.Param("repo_id"), c.Param("id")))
		return
	}
	var r ForgeRepo
	if err := tx.Where("id = ?", c.Param("repo_id")).Take(&r).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("load repository: %w", err))
		return
	}
	c.JSON(http.StatusOK, repoBody(r))
}
