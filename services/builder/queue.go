package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/coord"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
	"fabu.dev/services/builder/pipeline"
)

// project is what the builder reads of a project and its targets.
type project struct {
	ID     string
	Name   string
	GitURL string // without user info
	// GitCredentialsSealed is the repository's user info, sealed for
	// secret.GitCredentialsPlace; remoteURL puts it back for git.
	GitCredentialsSealed string
	Platform             string
	Namespace            string
	Type                 string
	SourceDir            string
	Branch               string
	DeployPath           string
	// Build settings (see pipeline.ProjectSettings); BuildEnv is a JSON object and
	// Pipeline the project's pipeline as JSON, both "" when unset.
	BuildProfile   string
	BuildScript    string
	BuildOutputDir string
	BuildImage     string
	BuildEnv       string
	Pipeline       string
	BuildOffline   bool // stages run without a network
	// Git features (gitmerge.go, gitactions.go): MergeRefs a JSON list of refs merged
	// before building, GitActions a JSON object of post-success actions; "" when unset.
	MergeRefs  string
	GitActions string
	// Docker projects (docker.go): container settings as JSON and the sealed registry
	// password.
	DockerSettings       string
	DockerPasswordSealed string
}

func (project) TableName() string { return "projects" }

// settings returns p's build settings for pipeline.Load.
func (p project) settings() (pipeline.ProjectSettings, error) {
	ps := pipeline.ProjectSettings{Type: p.Type, SourceDir: p.SourceDir, Profile: p.BuildProfile,
		Script: p.BuildScript, OutputDir: p.BuildOutputDir, Image: p.BuildImage}
	if p.BuildEnv != "" {
		if err := json.Unmarshal([]byte(p.BuildEnv), &ps.Env); err != nil {
			return ps, apperr.Invalid("project %s: build_env is not a JSON object of strings: %v", p.Name, err)
		}
	}
	if p.Pipeline != "" {
		ps.Pipeline = []byte(p.Pipeline)
	}
	return ps, nil
}

type target struct {
	Host string
	Port int
}

func (s *Service) loadProject(ctx context.Context, id string) (project, []target, error) {
	var p project
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, nil, apperr.NotFound("project %s not found", id)
	}
	if err != nil {
		return p, nil, fmt.Errorf("load project %s: %w", id, err)
	}
	var ts []target
	err = s.db.WithContext(ctx).Table("servers").Select("servers.host, servers.port").
		Joins("JOIN project_servers ps ON ps.server_id = servers.id").
		Where("ps.project_id = ?", id).Scan(&ts).Error
	if err != nil {
		return p, nil, fmt.Errorf("load servers of project %s: %w", id, err)
	}
	return p, ts, nil
}

// conflictKey is what two runs must not do at once: deploy one repository to the same
// path on the same hosts. Runs with equal keys share a queue and a lock.
func conflictKey(p project, ts []target) string {
	hosts := make([]string, len(ts))
	for i, t := range ts {
		hosts[i] = t.Host + ":" + strconv.Itoa(t.Port)
	}
	sort.Strings(hosts)
	sum := sha256.Sum256([]byte(p.Platform + "\n" + p.GitURL + "\n" + strings.Join(hosts, ",") + "\n" + p.DeployPath))
	return hex.EncodeToString(sum[:12])
}

func queueName(key string) string { return "runs:" + key }
func lockName(key string) string  { return "deploy:" + key }

// onRequested queues a requested run and tries to admit its queue's head.
func (s *Service) onRequested(ctx context.Context, m bus.Message) error {
	var ev events.RunRequested
	if err := events.Decode(m, &ev); err != nil {
		return err
	}
	p, ts, err := s.loadProject(ctx, ev.ProjectID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return bus.Permanent(err)
	}
	if err != nil {
		return err
	}
	key := conflictKey(p, ts)
	err = s.db.Tx(ctx, func(tx *gorm.DB) error {
		first, err := store.FirstDelivery(tx, GroupRequests, m.ID)
		if err != nil || !first {
			return err
		}
		err = runs.Advance(tx, ev.RunID, runs.Change{From: []runs.Status{runs.StatusRequested}, To: runs.StatusQueued,
			Set: map[string]any{"progress": 5}})
		if apperr.Is(err, apperr.CodeConflict) { // cancelled or moved on meanwhile
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	// Enqueue only a run that still waits: a redelivered request of a run that was admitted,
	// cancelled or finished meanwhile must not put it back in the queue index. A run still
	// queued is enqueued again, which is a no-op if the index has it and repairs the index if
	// an earlier attempt failed after the commit.
	r, err := runs.Get(s.db.WithContext(ctx), ev.RunID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Status != runs.StatusQueued {
		return nil
	}
	if err := s.coord.Enqueue(ctx, queueName(key), ev.RunID, 0); err != nil {
		return fmt.Errorf("enqueue run %s: %w", ev.RunID, err)
	}
	s.admit(ctx, key)
	return nil
}

// onFinished admits the next run of the finished run's queue, whose lock is now free.
func (s *Service) onFinished(ctx context.Context, m bus.Message) error {
	var ev events.RunFinished
	if err := events.Decode(m, &ev); err != nil {
		return err
	}
	p, ts, err := s.loadProject(ctx, ev.ProjectID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil // project deleted with its runs; nothing waits
	}
	if err != nil {
		return err
	}
	s.admit(ctx, conflictKey(p, ts))
	return nil
}

// admit starts queue key's head runs for as long as the head's lock can be taken.
func (s *Service) admit(ctx context.Context, key string) {
	for ctx.Err() == nil {
		item, lease, err := s.coord.PopHead(ctx, queueName(key), lockName(key), s.cfg.LockTTL)
		if errors.Is(err, coord.ErrEmpty) || errors.Is(err, coord.ErrLocked) {
			return
		}
		if err != nil {
			s.log.Error("pop run queue", "queue", key, "err", err)
			return
		}
		if !s.start(ctx, item.ID, lease) {
			// The run was cancelled or taken meanwhile: free the lock and try the next one.
			if err := s.coord.Release(ctx, lease); err != nil && !errors.Is(err, coord.ErrNotHeld) {
				s.log.Error("release lock", "queue", key, "err", err)
			}
			continue
		}
		return
	}
}

// start moves run id to building under lease and builds it in the background. It reports
// false when the run is no longer queued.
func (s *Service) start(ctx context.Context, id string, lease coord.Lease) bool {
	now := time.Now().UTC()
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		return runs.Advance(tx, id, runs.Change{From: []runs.Status{runs.StatusQueued}, To: runs.StatusBuilding,
			Set: map[string]any{"lock_token": lease.Token, "started_at": now, "heartbeat_at": now, "progress": 10}})
	})
	if err != nil {
		if !apperr.Is(err, apperr.CodeConflict) {
			s.log.Error("admit run", "run", id, "err", err)
		}
		return false
	}
	// The cause tells build that shutdown stopped it, so it hands the run back instead of
	// failing it.
	bctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.running[id] = func() { cancel(errShutdown) }
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, id)
			s.mu.Unlock()
			cancel(nil)
		}()
		s.build(bctx, id, lease)
	}()
	return true
}

// sweep rebuilds the queue index from the database (Redis may have lost it), admits what
// can run, and fails runs whose worker is gone.
func (s *Service) sweep(ctx context.Context) {
	var queued []runs.Run
	if err := s.db.WithContext(ctx).Where("status = ?", runs.StatusQueued).Order("created_at").Find(&queued).Error; err != nil {
		s.log.Error("list queued runs", "err", err)
		return
	}
	byKey := map[string][]string{}
	keyOf := map[string]string{} // project ID → conflict key
	for _, r := range queued {
		key, ok := keyOf[r.ProjectID]
		if !ok {
			p, ts, err := s.loadProject(ctx, r.ProjectID)
			if err != nil {
				continue
			}
			key = conflictKey(p, ts)
			keyOf[r.ProjectID] = key
		}
		byKey[key] = append(byKey[key], r.ID)
	}
	for key, ids := range byKey {
		s.restore(ctx, key, ids)
		s.admit(ctx, key)
	}
	s.reconcile(ctx)
}

// restore re-enqueues the queued runs ids (oldest first) that queue key's index lacks.
func (s *Service) restore(ctx context.Context, key string, ids []string) {
	items, err := s.coord.List(ctx, queueName(key))
	if err != nil {
		s.log.Error("list run queue", "queue", key, "err", err)
		return
	}
	have := map[string]bool{}
	for _, it := range items {
		have[it.ID] = true
	}
	for _, id := range ids {
		if have[id] {
			continue
		}
		if err := s.coord.Enqueue(ctx, queueName(key), id, 0); err != nil {
			s.log.Error("restore queued run", "run", id, "err", err)
			continue
		}
		// ids was read before the index: the run may have been admitted in between, and
		// then it must not stay in the queue index.
		if r, err := runs.Get(s.db.WithContext(ctx), id); err == nil && r.Status != runs.StatusQueued {
			if err := s.coord.Remove(ctx, queueName(key), id); err != nil && !errors.Is(err, coord.ErrNotFound) {
				s.log.Error("drop admitted run from queue", "run", id, "err", err)
			}
		}
	}
}

// reconcile fails active runs whose heartbeat stopped: their worker crashed or lost its
// lease. Their lock expires on its own.
func (s *Service) reconcile(ctx context.Context) {
	stale, err := runs.Stale(s.db.WithContext(ctx), time.Now().UTC().Add(-s.cfg.StaleAfter))
	if err != nil {
		s.log.Error("find stale runs", "err", err)
		return
	}
	for _, r := range stale {
		msg := fmt.Sprintf("worker lost: no heartbeat for %s while %s", s.cfg.StaleAfter, r.Status)
		err := s.db.Tx(ctx, func(tx *gorm.DB) error {
			return runs.Finish(tx, r, []runs.Status{r.Status}, runs.StatusFailed, msg, r.LockToken)
		})
		if err != nil && !apperr.Is(err, apperr.CodeConflict) {
			s.log.Error("fail stale run", "run", r.ID, "err", err)
			continue
		}
		s.log.Warn("failed stale run", "run", r.ID, "status", r.Status)
	}
	if len(stale) > 0 {
		s.kick()
	}
}
