package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/httpx"
)

// projectForge is the part of a project's row that ties it to a forge connection: the
// repository's path on the platform and the id of the hook fabu installed there.
type projectForge struct {
	ID                  string `gorm:"primaryKey"`
	Name                string
	Platform            string
	ConnectionID        string
	RepoPath            string
	HookID              string
	WebhookSecretSealed string
}

func (projectForge) TableName() string { return "projects" }

// SourceBody is where a project's repository lives: a connection and the repository's
// path on that platform (group/sub/name or owner/name).
type SourceBody struct {
	ConnectionID string `json:"connection_id"`
	RepoPath     string `json:"repo_path"`
	Platform     string `json:"platform,omitempty"`
	HookID       string `json:"hook_id,omitempty"`
}

func (s *Service) findProjectForge(ctx context.Context, id string) (projectForge, error) {
	var p projectForge
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, apperr.NotFound("project %s not found", id)
	}
	if err != nil {
		return p, fmt.Errorf("load project %s: %w", id, err)
	}
	return p, nil
}

// projectClient returns the API client of a project's connection, or a clear invalid
// error when the project has none.
func (s *Service) projectClient(ctx context.Context, p projectForge) (forge.Client, ForgeConnection, error) {
	if p.ConnectionID == "" || p.RepoPath == "" {
		return nil, ForgeConnection{}, apperr.Invalid("project %s has no forge connection; link it to a repository with PUT /api/v1/projects/%s/source", p.Name, p.ID)
	}
	conn, err := s.findConnection(ctx, p.ConnectionID)
	if err != nil {
		return nil, conn, err
	}
	c, err := s.forgeClient(conn)
	return c, conn, err
}

func (s *Service) getSource(c *gin.Context) {
	p, err := s.findProjectForge(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, SourceBody{ConnectionID: p.ConnectionID, RepoPath: p.RepoPath, Platform: p.Platform, HookID: p.HookID})
}

// setSource answers PUT /projects/:id/source: the project builds from a repository a sync
// found on the connection (not one a user removed). The project takes the connection's
// platform, which is where its webhook deliveries come from.
func (s *Service) setSource(c *gin.Context) {
	var b SourceBody
	if err := httpx.Bind(c, &b); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if b.Platform != "" || b.HookID != "" {
		httpx.Fail(c, s.log, apperr.Invalid("platform and hook_id come from the connection and the hook; leave them out"))
		return
	}
	var out SourceBody
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var p projectForge
		if err := tx.Where("id = ?", c.Param("id")).Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.NotFound("project %s not found", c.Param("id"))
			}
			return err
		}
		if p.HookID != "" && (p.ConnectionID != b.ConnectionID || p.RepoPath != b.RepoPath) {
			return apperr.Conflict("project %s has fabu's hook %s on %s; remove it (DELETE /api/v1/projects/%s/hook) before changing the source", p.Name, p.HookID, p.RepoPath, p.ID)
		}
		var conn ForgeConnection
		if err := tx.Where("id = ?", b.ConnectionID).Take(&conn).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.Invalid("connection %q does not exist", b.ConnectionID)
			}
			return err
		}
		var repo ForgeRepo
		err := tx.Where("connection_id = ? AND path = ? AND removed = ?", conn.ID, b.RepoPath, false).Order("gone").Take(&repo).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return apperr.Invalid("connection %s has no repository %q; sync it, or restore the repository if it was removed", conn.Name, b.RepoPath)
		}
		if err != nil {
			return err
		}
		if repo.Gone {
			return apperr.Invalid("repository %s is no longer on %s", repo.Path, conn.Name)
		}
		out = SourceBody{ConnectionID: conn.ID, RepoPath: repo.Path, Platform: conn.Platform, HookID: p.HookID}
		return tx.Model(&projectForge{}).Where("id = ?", p.ID).Updates(map[string]any{
			"connection_id": conn.ID, "repo_path": repo.Path, "platform": conn.Platform, "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// clearSource answers DELETE /projects/:id/source; fabu's hook must be removed first, or
// nothing would know where it is.
func (s *Service) clearSource(c *gin.Context) {
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var p projectForge
		if err := tx.Where("id = ?", c.Param("id")).Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return apperr.NotFound("project %s not found", c.Param("id"))
			}
			return err
		}
		if p.HookID != "" {
			return apperr.Conflict("project %s has fabu's hook %s; remove it first", p.Name, p.HookID)
		}
		return tx.Model(&projectForge{}).Where("id = ?", p.ID).
			Updates(map[string]any{"connection_id": "", "repo_path": "", "updated_at": time.Now().UTC()}).Error
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}
