package runs_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/bus"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// forEachDB runs f against a fresh SQLite and a fresh PostgreSQL database.
func forEachDB(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f(t, storetest.Open(t, driver))
		})
	}
}

func exec(t *testing.T, db *store.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatal(err)
	}
}

func setup(t *testing.T, db *store.DB) {
	t.Helper()
	exec(t, db, `INSERT INTO projects (id, name, git_url, type, deploy_path) VALUES ('p1', 'shop', '/tmp/x.git', 'static', '/srv/shop')`)
}

// insertRun stores a run with status and lock token, progress 40 and no heartbeat.
func insertRun(t *testing.T, db *store.DB, id string, status runs.Status, token int64, heartbeat *time.Time) {
	t.Helper()
	now := time.Now().UTC()
	exec(t, db, `INSERT INTO runs (id, project_id, ref, status, progress, lock_token, heartbeat_at, created_at, updated_at) VALUES (?, 'p1', 'main', ?, 40, ?, ?, ?, ?)`,
		id, status, token, heartbeat, now, now)
}

func get(t *testing.T, db *store.DB, id string) runs.Run {
	t.Helper()
	r, err := runs.Get(db.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type outboxRow struct {
	ID, Topic, MsgKey, Payload string
}

func outboxOf(t *testing.T, db *store.DB, id string) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := db.Table("outbox").Where("msg_key = ?", id).Order("seq").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRequest(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		r := runs.Run{ProjectID: "p1", Ref: "main", Trigger: "manual", TriggeredBy: "alice"}
		if err := db.Tx(context.Background(), func(tx *gorm.DB) error { return runs.Request(tx, &r) }); err != nil {
			t.Fatal(err)
		}
		got := get(t, db, r.ID)
		if got.Status != runs.StatusRequested || got.Ref != "main" || got.TriggeredBy != "alice" {
			t.Errorf("stored run %+v", got)
		}
		rows := outboxOf(t, db, r.ID)
		if len(rows) != 1 || rows[0].Topic != events.TopicRunRequested {
			t.Fatalf("outbox %+v, want one RunRequested", rows)
		}
		var ev events.RunRequested
		if err := json.Unmarshal([]byte(rows[0].Payload), &ev); err != nil {
			t.Fatal(err)
		}
		if want := (events.RunRequested{RunID: r.ID, ProjectID: "p1", Ref: "main", Trigger: "manual"}); ev != want {
			t.Errorf("payload %+v, want %+v", ev, want)
		}
		if _, err := runs.Get(db.DB, "nope"); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("Get of a missing run: %v, want not_found", err)
		}
	})
}

func TestAdvance(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		tests := []struct {
			name     string
			status   runs.Status
			token    int64
			change   runs.Change
			wantCode apperr.Code // "" = success
			want     runs.Status
		}{
			{"from status matches", runs.StatusRequested, 0,
				runs.Change{From: []runs.Status{runs.StatusRequested}, To: runs.StatusQueued, Set: map[string]any{"progress": 5}}, "", runs.StatusQueued},
			{"one of several from statuses", runs.StatusDeploying, 9,
				runs.Change{From: []runs.Status{runs.StatusBuilding, runs.StatusDeploying}, To: runs.StatusFailed}, "", runs.StatusFailed},
			{"token matches", runs.StatusBuilding, 7,
				runs.Change{From: []runs.Status{runs.StatusBuilding}, To: runs.StatusDeploying, Token: 7, Set: map[string]any{"progress": 55}}, "", runs.StatusDeploying},
			{"wrong from status", runs.StatusQueued, 0,
				runs.Change{From: []runs.Status{runs.StatusRequested}, To: runs.StatusQueued, Set: map[string]any{"progress": 5}}, apperr.CodeConflict, runs.StatusQueued},
			{"final run does not move", runs.StatusCancelled, 0,
				runs.Change{From: []runs.Status{runs.StatusQueued}, To: runs.StatusBuilding}, apperr.CodeConflict, runs.StatusCancelled},
			{"wrong fencing token", runs.StatusBuilding, 7,
				runs.Change{From: []runs.Status{runs.StatusBuilding}, To: runs.StatusDeploying, Token: 6, Set: map[string]any{"progress": 55}}, apperr.CodeConflict, runs.StatusBuilding},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := "adv" + string(rune('a'+i))
				insertRun(t, db, id, tt.status, tt.token, nil)
				msg, err := events.New("test.topic", id, map[string]string{"case": tt.name})
				if err != nil {
					t.Fatal(err)
				}
				err = db.Tx(context.Background(), func(tx *gorm.DB) error { return runs.Advance(tx, id, tt.change, msg) })
				r := get(t, db, id)
				rows := outboxOf(t, db, id)
				if tt.wantCode != "" {
					if apperr.CodeOf(err) != tt.wantCode {
						t.Fatalf("err = %v, want %s", err, tt.wantCode)
					}
					if r.Status != tt.want || r.Progress != 40 {
						t.Errorf("run %s progress %d after a refused change, want it untouched", r.Status, r.Progress)
					}
					if len(rows) != 0 {
						t.Errorf("refused change wrote %d outbox rows", len(rows))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != tt.want {
					t.Errorf("status %s, want %s", r.Status, tt.want)
				}
				if p, ok := tt.change.Set["progress"]; ok && r.Progress != p {
					t.Errorf("progress %d, want %v", r.Progress, p)
				}
				if len(rows) != 1 || rows[0].ID != msg.ID || rows[0].Topic != "test.topic" {
					t.Errorf("outbox %+v, want the change's event", rows)
				}
			})
		}
	})
}

// A transaction that rolls back after Advance leaves neither the row change nor the event.
func TestAdvanceRollsBackWithTx(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		insertRun(t, db, "r1", runs.StatusQueued, 0, nil)
		boom := errors.New("later step failed")
		err := db.Tx(context.Background(), func(tx *gorm.DB) error {
			msg, err := events.New("test.topic", "r1", map[string]int{"n": 1})
			if err != nil {
				return err
			}
			if err := runs.Advance(tx, "r1", runs.Change{From: []runs.Status{runs.StatusQueued}, To: runs.StatusBuilding, Set: map[string]any{"lock_token": 5}}, msg); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx err = %v, want %v", err, boom)
		}
		if r := get(t, db, "r1"); r.Status != runs.StatusQueued || r.LockToken != 0 {
			t.Errorf("after rollback run is %s with token %d", r.Status, r.LockToken)
		}
		if rows := outboxOf(t, db, "r1"); len(rows) != 0 {
			t.Errorf("after rollback outbox has %+v", rows)
		}
	})
}

func TestFinish(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		tests := []struct {
			name         string
			status       runs.Status
			errMsg       string
			wantErr      bool
			wantProgress int
		}{
			{"succeeded", runs.StatusSucceeded, "", false, 100},
			{"failed with error", runs.StatusFailed, "host web-1 unreachable", false, 40},
			{"cancelled", runs.StatusCancelled, "cancelled by alice", false, 40},
			{"not a final status", runs.StatusDeploying, "", true, 40},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := "fin" + string(rune('a'+i))
				insertRun(t, db, id, runs.StatusDeploying, 3, nil)
				r := get(t, db, id)
				err := db.Tx(context.Background(), func(tx *gorm.DB) error {
					return runs.Finish(tx, r, []runs.Status{runs.StatusDeploying}, tt.status, tt.errMsg, 3)
				})
				got := get(t, db, id)
				rows := outboxOf(t, db, id)
				if tt.wantErr {
					if err == nil {
						t.Fatal("Finish to a non-final status succeeded")
					}
					if got.Status != runs.StatusDeploying || len(rows) != 0 {
						t.Errorf("refused Finish left run %s and %d events", got.Status, len(rows))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != tt.status || got.Error != tt.errMsg || got.FinishedAt == nil || got.Progress != tt.wantProgress {
					t.Errorf("run %s error %q finished %v progress %d; want %s %q set %d", got.Status, got.Error, got.FinishedAt, got.Progress, tt.status, tt.errMsg, tt.wantProgress)
				}
				if len(rows) != 1 || rows[0].Topic != events.TopicRunFinished {
					t.Fatalf("outbox %+v, want one RunFinished", rows)
				}
				var ev events.RunFinished
				if err := events.Decode(bus.Message{Payload: []byte(rows[0].Payload)}, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.RunID != id || ev.ProjectID != "p1" || ev.Status != string(tt.status) {
					t.Errorf("event %+v", ev)
				}
				switch {
				case tt.errMsg == "" && ev.Error != nil:
					t.Errorf("success event carries error %+v", ev.Error)
				case tt.errMsg != "" && (ev.Error == nil || ev.Error.Message != tt.errMsg || ev.Error.Code != string(apperr.CodeInternal)):
					t.Errorf("event error %+v, want internal %q", ev.Error, tt.errMsg)
				}
			})
		}
		t.Run("wrong token", func(t *testing.T) {
			insertRun(t, db, "fin-token", runs.StatusDeploying, 3, nil)
			r := get(t, db, "fin-token")
			err := db.Tx(context.Background(), func(tx *gorm.DB) error {
				return runs.Finish(tx, r, []runs.Status{runs.StatusDeploying}, runs.StatusSucceeded, "", 4)
			})
			if apperr.CodeOf(err) != apperr.CodeConflict {
				t.Fatalf("err = %v, want conflict", err)
			}
			if got := get(t, db, "fin-token"); got.Status != runs.StatusDeploying || got.FinishedAt != nil {
				t.Errorf("run %s finished %v", got.Status, got.FinishedAt)
			}
			if rows := outboxOf(t, db, "fin-token"); len(rows) != 0 {
				t.Errorf("outbox %+v", rows)
			}
		})
	})
}

func TestHeartbeat(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		tests := []struct {
			name         string
			status       runs.Status
			token        int64
			progress     int
			wantOK       bool
			wantProgress int
		}{
			{"building, own token", runs.StatusBuilding, 5, 30, true, 30},
			{"deploying, own token", runs.StatusDeploying, 5, 70, true, 70},
			{"negative progress leaves it", runs.StatusBuilding, 5, -1, true, 40},
			{"another token", runs.StatusBuilding, 6, 30, false, 40},
			{"queued run", runs.StatusQueued, 5, 30, false, 40},
			{"finished run", runs.StatusSucceeded, 5, 30, false, 40},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := "hb" + string(rune('a'+i))
				old := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
				// The row holds token 5; tt.token is the one the worker presents.
				insertRun(t, db, id, tt.status, 5, &old)
				ok, err := runs.Heartbeat(db.DB, id, tt.token, tt.progress)
				if err != nil {
					t.Fatal(err)
				}
				if ok != tt.wantOK {
					t.Errorf("Heartbeat = %v, want %v", ok, tt.wantOK)
				}
				r := get(t, db, id)
				if r.Progress != tt.wantProgress {
					t.Errorf("progress %d, want %d", r.Progress, tt.wantProgress)
				}
				moved := r.HeartbeatAt != nil && r.HeartbeatAt.After(old.Add(time.Minute))
				if moved != tt.wantOK {
					t.Errorf("heartbeat_at %v (was %v); moved = %v, want %v", r.HeartbeatAt, old, moved, tt.wantOK)
				}
			})
		}
	})
}

func TestStale(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		now := time.Now().UTC()
		old, fresh := now.Add(-time.Minute), now
		insertRun(t, db, "building-old", runs.StatusBuilding, 1, &old)
		insertRun(t, db, "deploying-old", runs.StatusDeploying, 1, &old)
		insertRun(t, db, "building-never", runs.StatusBuilding, 1, nil)
		insertRun(t, db, "building-fresh", runs.StatusBuilding, 1, &fresh)
		insertRun(t, db, "queued-old", runs.StatusQueued, 0, &old)
		insertRun(t, db, "failed-old", runs.StatusFailed, 1, &old)
		rs, err := runs.Stale(db.DB, now.Add(-30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range rs {
			got[r.ID] = true
		}
		want := map[string]bool{"building-old": true, "deploying-old": true, "building-never": true}
		if len(got) != len(want) {
			t.Errorf("stale = %v, want %v", got, want)
		}
		for id := range want {
			if !got[id] {
				t.Errorf("stale = %v, missing %s", got, id)
			}
		}
	})
}

// A cancel request makes the worker's next heartbeat fail; only an active run takes one.
func TestCancelRequest(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		setup(t, db)
		insertRun(t, db, "cr-a", runs.StatusBuilding, 5, nil)
		insertRun(t, db, "cr-q", runs.StatusQueued, 0, nil)
		if err := runs.CancelRequest(db.DB, "cr-a", "carol"); err != nil {
			t.Fatal(err)
		}
		if ok, err := runs.Heartbeat(db.DB, "cr-a", 5, -1); err != nil || ok {
			t.Errorf("Heartbeat after cancel request = %v, %v; want false", ok, err)
		}
		if by, ok, err := runs.CancelRequested(db.DB, "cr-a"); err != nil || !ok || by != "carol" {
			t.Errorf("CancelRequested = %q, %v, %v; want carol", by, ok, err)
		}
		if err := runs.CancelRequest(db.DB, "cr-q", "carol"); err == nil {
			t.Error("cancel request of a queued run succeeded, want a conflict")
		}
		if _, ok, _ := runs.CancelRequested(db.DB, "cr-q"); ok {
			t.Error("queued run marked for cancel")
		}
	})
}
