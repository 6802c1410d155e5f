// Package deployer is fabu's deployer service. It ships a built run's artifact to every
// target server over SSH with pinned host keys, unpacks it into releases/<id>, verifies it,
// switches `current` atomically on every server only after all of them hold the release,
// prunes old releases and finishes the run truthfully.
package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/events"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/sshx"
	"fabu.dev/libs/store"
)

// Group is the deployer's consumer group.
const Group = "deployer"

// SettingPublicKey is the settings row holding the deployer's SSH public key, which users add
// to their servers' authorized_keys.
const SettingPublicKey = "ssh_public_key"

// Config configures the deployer.
type Config struct {
	KeyPath        string        // the deployer's SSH private key; created when missing
	ArtifactDir    string        // the builder's artifact dir when shared (one host, a volume); see fetch.go
	DialTimeout    time.Duration // default 10s
	LockTTL        time.Duration // lease of the target lock while deploying; default 30s
	HeartbeatEvery time.Duration // default LockTTL/6
	Grace          time.Duration // how long shutdown waits for in-flight deploys; default 60s
	// Secrets opens docker projects' sealed registry passwords; without it a project with
	// a password fails with that reason.
	Secrets *secret.Keyring
}

// Validate fills defaults and checks cfg.
func (c *Config) Validate() error {
	if c.KeyPath == "" || !filepath.IsAbs(c.KeyPath) {
		return fmt.Errorf("deployer: an absolute SSH key path is required")
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.LockTTL == 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.HeartbeatEvery == 0 {
		c.HeartbeatEvery = c.LockTTL / 6
	}
	if c.Grace == 0 {
		c.Grace = time.Minute
	}
	if c.HeartbeatEvery >= c.LockTTL {
		return fmt.Errorf("deployer: heartbeat %s must be shorter than the lock lease %s", c.HeartbeatEvery, c.LockTTL)
	}
	return nil
}

// Service is the deployer service.
type Service struct {
	cfg    Config
	db     *store.DB
	bus    bus.Subscriber
	coord  coord.Locker
	log    *slog.Logger
	kick   func()
	signer ssh.Signer
	pub    string

	wg sync.WaitGroup
}

// New returns the deployer service, loading (or creating) its SSH key.
func New(cfg Config, db *store.DB, sub bus.Subscriber, locks coord.Locker, log *slog.Logger, kick func()) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	signer, pub, err := sshx.LoadOrCreateKey(cfg.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("deployer key: %w", err)
	}
	if kick == nil {
		kick = func() {}
	}
	return &Service{cfg: cfg, db: db, bus: sub, coord: locks, log: log, kick: kick, signer: signer, pub: pub}, nil
}

// PublicKey returns the authorized_keys line of the deployer's key.
func (s *Service) PublicKey() string { return s.pub }

// Checks returns the service's readiness checks.
func (s *Service) Checks() []httpx.Check {
	return []httpx.Check{{Name: "database", Fn: s.db.Ping}}
}

// Run publishes the deployer's public key and consumes built runs until ctx ends. A deploy
// in flight at shutdown is allowed Grace to finish, since stopping halfway through a switch
// helps nobody.
func (s *Service) Run(ctx context.Context) error {
	if err := s.publishKey(ctx); err != nil {
		return err
	}
	err := s.bus.Subscribe(ctx, events.TopicRunBuilt, Group, s.onBuilt)
	s.wg.Wait()
	return err
}

type setting struct {
	Key       string `gorm:"primaryKey"`
	Value     string
	UpdatedAt time.Time
}

func (setting) TableName() string { return "settings" }

func (s *Service) publishKey(ctx context.Context) error {
	row := setting{Key: SettingPublicKey, Value: s.pub, UpdatedAt: time.Now().UTC()}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "updated_at"}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("publish deployer public key: %w", err)
	}
	return nil
}

// onBuilt deploys one built run. The delivery is claimed first, so a redelivered event
// never deploys twice; a deploy interrupted by a crash is failed by the reconciler when its
// heartbeat stops.
func (s *Service) onBuilt(ctx context.Context, m bus.Message) error {
	var ev events.RunBuilt
	if err := events.Decode(m, &ev); err != nil {
		return err
	}
	first := false
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var err error
		first, err = store.FirstDelivery(tx, Group, m.ID)
		return err
	})
	if err != nil || !first {
		return err
	}
	s.wg.Add(1)
	defer s.wg.Done()
	// The deploy runs to completion (bounded by Grace after shutdown begins) even when the
	// subscription's context ends.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.cfg.Grace, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	defer stop()
	s.deploy(dctx, ev)
	return nil
}

var errLostLock = errors.New("lost the target lock")
