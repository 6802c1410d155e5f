package gateway

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
)

// ApplyProject is a project in an apply document: its servers are named, not IDs, and
// its repository is named by connection name and path on the platform.
type ApplyProject struct {
	ProjectBody
	Servers    []string `json:"servers"`
	Connection string   `json:"connection,omitempty"`
}

// ApplyDoc declares forge connections, servers and projects; applying it twice changes
// nothing the second time.
type ApplyDoc struct {
	Connections []ConnectionBody `json:"connections"`
	Servers     []ServerBody     `json:"servers"`
	Projects    []ApplyProject   `json:"projects"`
}

// Applied is what apply did to one named object.
type Applied struct {
	Name   string `json:"name"`
	Action string `json:"action"` // created, updated or unchanged
}

// apply upserts the declared servers and projects by name, all or nothing.
func (s *Service) apply(c *gin.Context) {
	var doc ApplyDoc
	if err := httpx.Bind(c, &doc); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	var out struct {
		Connections []Applied `json:"connections"`
		Servers     []Applied `json:"servers"`
		Projects    []Applied `json:"projects"`
	}
	out.Connections, out.Servers, out.Projects = []Applied{}, []Applied{}, []Applied{}
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		for _, b := range doc.Connections {
			a, err := s.applyConnection(tx, b)
			if err != nil {
				return err
			}
			out.Connections = append(out.Connections, a)
		}
		for _, b := range doc.Servers {
			a, err := applyServer(tx, b)
			if err != nil {
				return err
			}
			out.Servers = append(out.Servers, a)
		}
		for _, p := range doc.Projects {
			a, err := s.applyProject(tx, p)
			if err != nil {
				return err
			}
			out.Projects = append(out.Projects, a)
		}
		return nil
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func applyServer(tx *gorm.DB, b ServerBody) (Applied, error) {
	if b.ID != "" {
		return Applied{}, apperr.Invalid("server %s: id is assigned by fabu; declare servers by name", b.Name)
	}
	m, err := b.toModel()
	if err != nil {
		return Applied{}, err
	}
	var old Server
	err = tx.Where("name = ?", m.Name).Take(&old).Error
	now := time.Now().UTC()
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		m.ID, m.CreatedAt, m.UpdatedAt = ids.New(), now, now
		if err := tx.Create(&m).Error; err != nil {
			return Applied{}, dbError(err, "server %q already exists", m.Name)
		}
		return Applied{m.Name, "created"}, nil
	case err != nil:
		return Applied{}, err
	}
	m.ID, m.CreatedAt, m.UpdatedAt = old.ID, old.CreatedAt, old.UpdatedAt
	if m == old {
		return Applied{m.Name, "unchanged"}, nil
	}
	m.UpdatedAt = now
	return Applied{m.Name, "updated"}, tx.Save(&m).Error
}

func (s *Service) applyProject(tx *gorm.DB, p ApplyProject) (Applied, error) {
	if p.ID != "" || len(p.ServerIDs) > 0 {
		return Applied{}, apperr.Invalid("project %s: declare servers by name in \"servers\", not by id", p.Name)
	}
	m, err := s.projectModel(p.ProjectBody)
	if err != nil {
		return Applied{}, err
	}
	link, err := applyLink(tx, p)
	if err != nil {
		return Applied{}, err
	}
	var sids []string
	for _, name := range sortedCopy(p.Servers) {
		var sv Server
		if err := tx.Where("name = ?", name).Take(&sv).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return Applied{}, apperr.Invalid("project %s: no server named %q", p.Name, name)
			}
			return Applied{}, err
		}
		sids = append(sids, sv.ID)
	}
	var old Project
	err = tx.Where("name = ?", m.Name).Take(&old).Error
	now := time.Now().UTC()
	action := "updated"
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		m.ID, m.CreatedAt, action = ids.New(), now, "created"
		m.Platform = cmp.Or(m.Platform, "gitlab")
	case err != nil:
		return Applied{}, err
	default:
		if err := keepForgeLink(&m, old); err != nil {
			return Applied{}, err
		}
		m.ID, m.CreatedAt, m.UpdatedAt, m.WebhookSecretSealed = old.ID, old.CreatedAt, old.UpdatedAt, old.WebhookSecretSealed
	}
	if link != nil {
		if old.HookID != "" && (old.ConnectionID != link.ConnectionID || old.RepoPath != link.RepoPath) {
			return Applied{}, apperr.Conflict("project %s: remove fabu's hook before moving the project to another repository", p.Name)
		}
		m.Platform, m.ConnectionID, m.RepoPath = link.Platform, link.ConnectionID, link.RepoPath
	}
	if p.WebhookSecret != "" && !s.secretIs(old, p.WebhookSecret) {
		if err := s.sealSecret(&m, p.WebhookSecret); err != nil {
			return Applied{}, err
		}
	}
	if err := s.applyDockerPassword(&m, old, p.ProjectBody); err != nil { // docker.go
		return Applied{}, err
	}
	if err := s.sealGitCredentials(&m, old, p.RemoveCredentials); err != nil { // gitcreds.go
		return Applied{}, err
	}
	if action == "updated" {
		var cur []projectServer
		if err := tx.Where("project_id = ?", m.ID).Order("server_id").Find(&cur).Error; err != nil {
			return Applied{}, err
		}
		curIDs := make([]string, len(cur))
		for i, c := range cur {
			curIDs[i] = c.ServerID
		}
		slices.Sort(sids)
		if m == old && slices.Equal(curIDs, sids) {
			return Applied{m.Name, "unchanged"}, nil
		}
	}
	m.UpdatedAt = now
	if err := saveProjectTx(tx, &m, sids); err != nil {
		return Applied{}, err
	}
	if link != nil {
		err := tx.Model(&projectForge{}).Where("id = ?", m.ID).Updates(map[string]any{
			"connection_id": link.ConnectionID, "repo_path": link.RepoPath, "platform": link.Platform}).Error
		if err != nil {
			return Applied{}, fmt.Errorf("link project %s: %w", m.Name, err)
		}
	}
	return Applied{m.Name, action}, nil
}

// projectLink is the repository an apply document links a project to.
type projectLink struct{ ConnectionID, RepoPath, Platform string }

// applyLink resolves a project's connection (by name) and repository path; nil when the
// document names no connection.
func applyLink(tx *gorm.DB, p ApplyProject) (*projectLink, error) {
	if p.Connection == "" {
		if p.RepoPath != "" {
			return nil, apperr.Invalid("project %s: repo_path needs a connection", p.Name)
		}
		return nil, nil
	}
	if p.RepoPath == "" || len(p.RepoPath) > 500 || strings.ContainsAny(p.RepoPath, " \t\r\n\x00") ||
		strings.HasPrefix(p.RepoPath, "/") || strings.Contains(p.RepoPath, "..") {
		return nil, apperr.Invalid("project %s: repo_path %q must be the repository's path on the platform (group/name)", p.Name, p.RepoPath)
	}
	var conn ForgeConnection
	if err := tx.Where("name = ?", p.Connection).Take(&conn).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, apperr.Invalid("project %s: no connection named %q", p.Name, p.Connection)
		}
		return nil, err
	}
	if p.Platform != "" && p.Platform != conn.Platform {
		return nil, apperr.Invalid("project %s: platform %s differs from its connection's (%s); leave it out", p.Name, p.Platform, conn.Platform)
	}
	return &projectLink{ConnectionID: conn.ID, RepoPath: p.RepoPath, Platform: conn.Platform}, nil
}

// applyConnection upserts a connection by name. Its token is write-only: a document
// without one keeps the stored token, and the same token applied again changes nothing.
func (s *Service) applyConnection(tx *gorm.DB, b ConnectionBody) (Applied, error) {
	if b.ID != "" {
		return Applied{}, apperr.Invalid("connection %s: id is assigned by fabu; declare connections by name", b.Name)
	}
	m, err := b.toModel()
	if err != nil {
		return Applied{}, err
	}
	var old ForgeConnection
	err = tx.Where("name = ?", m.Name).Take(&old).Error
	now := time.Now().UTC()
	action := "updated"
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		if b.Token == "" {
			return Applied{}, apperr.Invalid("connection %s: a token is required", b.Name)
		}
		m.ID, m.CreatedAt, m.SyncState, action = ids.New(), now, SyncNever, "created"
	case err != nil:
		return Applied{}, err
	default:
		if old.Platform != m.Platform {
			return Applied{}, apperr.Invalid("connection %s: the platform cannot change (from %s to %s)", old.Name, old.Platform, m.Platform)
		}
		m.ID, m.CreatedAt, m.UpdatedAt, m.TokenSealed = old.ID, old.CreatedAt, old.UpdatedAt, old.TokenSealed
		m.SyncState, m.SyncError, m.SyncedAt = old.SyncState, old.SyncError, old.SyncedAt
	}
	if b.Token != "" && !s.sealedIs(old.TokenSealed, TokenPlace(old.ID), b.Token) {
		sealed, err := s.cfg.Secrets.Seal([]byte(b.Token), TokenPlace(m.ID))
		if err != nil {
			return Applied{}, fmt.Errorf("seal token of connection %s: %w", m.Name, err)
		}
		m.TokenSealed = sealed
	}
	if action == "updated" && m == old {
		return Applied{m.Name, "unchanged"}, nil
	}
	m.UpdatedAt = now
	if err := tx.Save(&m).Error; err != nil {
		return Applied{}, dbError(err, "connection %q already exists", m.Name)
	}
	return Applied{m.Name, action}, nil
}

// sortedCopy returns the distinct values of in, sorted.
func sortedCopy(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// secretIs reports whether project old's sealed webhook secret is plain, so that applying
// the same document again leaves the project unchanged (sealing twice differs every time).
func (s *Service) secretIs(old Project, plain string) bool {
	return s.sealedIs(old.WebhookSecretSealed, SecretPlace(old.ID), plain)
}

// sealedIs reports whether sealed (for place) opens to plain.
func (s *Service) sealedIs(sealed, place, plain string) bool {
	if sealed == "" {
		return false
	}
	got, err := s.cfg.Secrets.Open(sealed, place)
	return err == nil && subtle.ConstantTimeCompare(got, []byte(plain)) == 1
}
