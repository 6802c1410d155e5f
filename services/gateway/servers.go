package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/sshx"
	"fabu.dev/libs/store"
)

// Server is a deploy target as stored in the servers table.
type Server struct {
	ID        string `gorm:"primaryKey"`
	Name      string
	Host      string
	Port      int
	SSHUser   string `gorm:"column:ssh_user"`
	HostKey   string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName tells GORM the table.
func (Server) TableName() string { return "servers" }

// ServerBody is a server as the API reads and shows it.
type ServerBody struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name"`
	Host    string `json:"host"`
	Port    int    `json:"port,omitempty"`
	User    string `json:"user"`
	HostKey string `json:"host_key"`
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
)

func validName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return apperr.Invalid("%s name %q must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// toModel validates b into a Server.
func (b ServerBody) toModel() (Server, error) {
	if b.Port == 0 {
		b.Port = 22
	}
	if err := validName("server", b.Name); err != nil {
		return Server{}, err
	}
	if err := sshx.ValidHost(b.Host); err != nil {
		return Server{}, apperr.Invalid("server %s: host %q: %v", b.Name, b.Host, err)
	}
	if b.Port < 1 || b.Port > 65535 {
		return Server{}, apperr.Invalid("server %s: port %d is not 1-65535", b.Name, b.Port)
	}
	if !userPattern.MatchString(b.User) {
		return Server{}, apperr.Invalid("server %s: user %q is not a valid login name", b.Name, b.User)
	}
	if b.HostKey == "" {
		return Server{}, apperr.Invalid("server %s: host_key is required: fabu pins every server's SSH host key (get it with ssh-keyscan)", b.Name)
	}
	if _, err := sshx.ParseHostKey(b.HostKey); err != nil {
		return Server{}, apperr.Invalid("server %s: host_key: %v", b.Name, err)
	}
	return Server{Name: b.Name, Host: b.Host, Port: b.Port, SSHUser: b.User, HostKey: b.HostKey}, nil
}

func serverBody(m Server) ServerBody {
	return ServerBody{ID: m.ID, Name: m.Name, Host: m.Host, Port: m.Port, User: m.SSHUser, HostKey: m.HostKey}
}

func (s *Service) listServers(c *gin.Context) {
	var ms []Server
	if err := s.db.WithContext(c.Request.Context()).Order("name").Find(&ms).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list servers: %w", err))
		return
	}
	out := make([]ServerBody, len(ms))
	for i, m := range ms {
		out[i] = serverBody(m)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) createServer(c *gin.Context) {
	var b ServerBody
	if err := httpx.Bind(c, &b); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m, err := b.toModel()
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	now := time.Now().UTC()
	m.ID, m.CreatedAt, m.UpdatedAt = ids.New(), now, now
	if err := s.db.WithContext(c.Request.Context()).Create(&m).Error; err != nil {
		httpx.Fail(c, s.log, dbError(err, "server %q already exists", m.Name))
		return
	}
	c.JSON(http.StatusCreated, serverBody(m))
}

func (s *Service) findServer(ctx context.Context, id string) (Server, error) {
	var m Server
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, apperr.NotFound("server %s not found", id)
	}
	return m, err
}

func (s *Service) getServer(c *gin.Context) {
	m, err := s.findServer(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, serverBody(m))
}

func (s *Service) updateServer(c *gin.Context) {
	var b ServerBody
	if err := httpx.Bind(c, &b); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	old, err := s.findServer(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m, err := b.toModel()
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m.ID, m.CreatedAt, m.UpdatedAt = old.ID, old.CreatedAt, time.Now().UTC()
	if err := s.db.WithContext(c.Request.Context()).Save(&m).Error; err != nil {
		httpx.Fail(c, s.log, dbError(err, "server %q already exists", m.Name))
		return
	}
	c.JSON(http.StatusOK, serverBody(m))
}

func (s *Service) deleteServer(c *gin.Context) { s.deleteByID(c, &Server{}, "server") }

// deleteByID deletes the row of model whose id is the :id parameter; kind names it in errors.
func (s *Service) deleteByID(c *gin.Context, model any, kind string) {
	res := s.db.WithContext(c.Request.Context()).Where("id = ?", c.Param("id")).Delete(model)
	if res.Error != nil {
		httpx.Fail(c, s.log, fmt.Errorf("delete %s: %w", kind, res.Error))
		return
	}
	if res.RowsAffected == 0 {
		httpx.Fail(c, s.log, apperr.NotFound("%s %s not found", kind, c.Param("id")))
		return
	}
	c.Status(http.StatusNoContent)
}

// dbError turns a unique violation into a conflict with the given message.
func dbError(err error, format string, args ...any) error {
	if store.IsUniqueViolation(err) {
		return apperr.Conflict(format, args...)
	}
	return err
}

func (s *Service) publicKey(c *gin.Context) {
	var v string
	err := s.db.WithContext(c.Request.Context()).Table("settings").Select("value").Where("key = ?", "ssh_public_key").Scan(&v).Error
	if err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("read deployer public key: %w", err))
		return
	}
	if v == "" {
		httpx.Fail(c, s.log, apperr.Unavailable("no deployer has started yet, so there is no public key to show"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"public_key": v})
}
