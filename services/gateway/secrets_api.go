package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/secret"
)

// Build secrets and artifact manifests.
//
// A project's build secrets are write-only: PUT sets a value (sealed with the master keys
// for its row, secret.BuildSecretPlace), DELETE removes it, and GET lists names, when and
// by whom each was last set — never a value, in no answer, error or audit entry (the audit
// middleware leaves out these routes' request bodies: auditOmitsBody). The builder opens
// them and passes each stage the ones it declares.
//
// GET /runs/:id/artifact answers the manifest of the run's artifact (libs/artifact
// BuildManifest, stored on the run by the builder) to viewers of its project.

// Limits of a build secret's value: at least minSecretValue bytes, because the run log
// masks shorter strings nowhere (masking them would shred the log and hide nothing).
const (
	minSecretValue = 4
	maxSecretValue = 16 << 10
)

// auditOmitsBody are the routes whose request bodies the audit log never records: they
// carry secret values under keys no redaction rule would recognize.
var auditOmitsBody = map[string]bool{
	"PUT /api/v1/projects/:id/secrets/:name": true,
}

// ProjectSecret is a build secret as the API shows it: never its value.
type ProjectSecret struct {
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// SecretValueBody is the body of PUT /projects/:id/secrets/:name.
type SecretValueBody struct {
	Value *string `json:"value"`
}

// secretRow is a row of project_secrets.
type secretRow struct {
	ID          string
	ProjectID   string
	Name        string
	ValueSealed string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	UpdatedBy   string
}

func (secretRow) TableName() string { return "project_secrets" }

// buildRoutes mounts build secrets and artifact manifests on the authenticated API group.
func (s *Service) buildRoutes(api gin.IRouter) {
	api.GET("/projects/:id/secrets", s.listSecrets)
	api.PUT("/projects/:id/secrets/:name", s.putSecret)
	api.DELETE("/projects/:id/secrets/:name", s.deleteSecret)
	api.GET("/runs/:id/artifact", s.getArtifactManifest)
}

// checkStageSecrets checks the secrets a pipeline stage declares: valid names, each once,
// none also a plain variable of the stage. Whether the project has them is checked when a
// run is built, since secrets may be added after the pipeline.
func checkStageSecrets(names []string, env map[string]string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if err := secret.CheckBuildSecretName(n); err != nil {
			_, msg := apperr.Public(err)
			return errors.New(msg)
		}
		if seen[n] {
			return fmt.Errorf("secret %s is declared twice", n)
		}
		seen[n] = true
		if _, ok := env[n]; ok {
			return fmt.Errorf("%s is both a variable and a secret of the stage", n)
		}
	}
	return nil
}

// checkSecretValue checks a value without ever quoting it.
func checkSecretValue(v string) error {
	switch {
	case len(v) < minSecretValue:
		return apperr.Invalid("the value must have at least %d bytes: shorter values cannot be masked in build logs", minSecretValue)
	case len(v) > maxSecretValue:
		return apperr.Invalid("the value has %d bytes, at most %d allowed", len(v), maxSecretValue)
	case strings.ContainsRune(v, 0):
		return apperr.Invalid("the value must not contain NUL bytes")
	case !utf8.ValidString(v):
		return apperr.Invalid("the value must be UTF-8 text")
	case strings.TrimSpace(v) == "":
		return apperr.Invalid("the value must not be only white space")
	}
	return nil
}

func toProjectSecret(r secretRow) ProjectSecret {
	return ProjectSecret{Name: r.Name, UpdatedAt: r.UpdatedAt.UTC(), UpdatedBy: r.UpdatedBy}
}

// listSecrets handles GET /projects/:id/secrets: names, when and by whom; no values.
func (s *Service) listSecrets(c *gin.Context) {
	var rows []secretRow
	err := s.db.WithContext(c.Request.Context()).Select("id, project_id, name, created_at, updated_at, updated_by").
		Where("project_id = ?", c.Param("id")).Order("name").Find(&rows).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list secrets of project %s: %w", c.Param("id"), err))
		return
	}
	out := make([]ProjectSecret, 0, len(rows))
	for _, r := range rows {
		out = append(out, toProjectSecret(r))
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"secrets": out})
}

// putSecret handles PUT /projects/:id/secrets/:name with {"value": "…"}: it creates the
// secret (201) or replaces its value (200). The answer names the secret, never the value.
func (s *Service) putSecret(c *gin.Context) {
	name := c.Param("name")
	if err := secret.CheckBuildSecretName(name); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	var body SecretValueBody
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxSecretValue*7+1024))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		// The decoder's message could quote the body; say only what was wrong.
		httpx.Fail(c, s.log, apperr.Invalid(`the body must be a JSON object {"value": "..."} of at most %d bytes`, maxSecretValue))
		return
	}
	if body.Value == nil {
		httpx.Fail(c, s.log, apperr.Invalid(`the body must be a JSON object {"value": "..."}`))
		return
	}
	if err := checkSecretValue(*body.Value); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	pid, who, now := c.Param("id"), currentUser(c).Username, time.Now().UTC()
	var saved secretRow
	created := false
	err := s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		var n int64
		if err := tx.Table("projects").Where("id = ?", pid).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return apperr.NotFound("project %s not found", pid)
		}
		err := tx.Where("project_id = ? AND name = ?", pid, name).Take(&saved).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			created = true
			saved = secretRow{ID: ids.New(), ProjectID: pid, Name: name, CreatedAt: now}
		} else if err != nil {
			return err
		}
		sealed, err := s.cfg.Secrets.Seal([]byte(*body.Value), secret.BuildSecretPlace(saved.ID))
		if err != nil {
			return err
		}
		saved.ValueSealed, saved.UpdatedAt, saved.UpdatedBy = sealed, now, who
		if created {
			return tx.Create(&saved).Error
		}
		return tx.Model(&secretRow{}).Where("id = ?", saved.ID).
			Updates(map[string]any{"value_sealed": sealed, "updated_at": now, "updated_by": who}).Error
	})
	if err != nil {
		var ae *apperr.Error
		if !errors.As(err, &ae) {
			err = fmt.Errorf("set secret %s of project %s: %w", name, pid, err)
		}
		httpx.Fail(c, s.log, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, toProjectSecret(saved))
}

// deleteSecret handles DELETE /projects/:id/secrets/:name.
func (s *Service) deleteSecret(c *gin.Context) {
	name := c.Param("name")
	if err := secret.CheckBuildSecretName(name); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	res := s.db.WithContext(c.Request.Context()).Where("project_id = ? AND name = ?", c.Param("id"), name).Delete(&secretRow{})
	if res.Error != nil {
		httpx.Fail(c, s.log, fmt.Errorf("delete secret %s of project %s: %w", name, c.Param("id"), res.Error))
		return
	}
	if res.RowsAffected == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("project %s has no secret %s", c.Param("id"), name))
		return
	}
	c.Status(http.StatusNoContent)
}

// getArtifactManifest handles GET /runs/:id/artifact: the manifest of the run's artifact.
func (s *Service) getArtifactManifest(c *gin.Context) {
	var manifests []string
	err := s.db.WithContext(c.Request.Context()).Table("runs").Where("id = ?", c.Param("id")).
		Limit(1).Pluck("artifact_manifest", &manifests).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("read the manifest of run %s: %w", c.Param("id"), err))
		return
	}
	if len(manifests) == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("run %s not found", c.Param("id")))
		return
	}
	if manifests[0] == "" || !json.Valid([]byte(manifests[0])) {
		httpx.Fail(c, s.log, apperr.NotFound("run %s has no artifact manifest: it has not been built yet, or was built before manifests existed", c.Param("id")))
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(manifests[0]))
}
