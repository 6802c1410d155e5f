package gateway

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"gorm.io/gorm"

	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// pastStage is a stage of a made-up run: its name and seconds.
type pastStage struct {
	name string
	secs int
}

// history writes the rows of a run of project started at start: prepare seconds before
// its first stage, its stages back to back, finish seconds after the last one.
func (e *env) pastRun(id, project string, status runs.Status, start time.Time, prepare, finish int, stages ...pastStage) {
	e.t.Helper()
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	cur := start.Add(sec(prepare))
	var rows []stageRow
	for i, s := range stages {
		end := cur.Add(sec(s.secs))
		st := "succeeded"
		if status != runs.StatusSucceeded && i == len(stages)-1 {
			st = "failed"
		}
		rows = append(rows, stageRow{RunID: id, Seq: i + 1, Name: s.name, Status: st, StartedAt: cur, FinishedAt: &end, DurationMS: sec(s.secs).Milliseconds()})
		cur = end
	}
	finished := cur.Add(sec(finish))
	e.insertRun(runs.Run{ID: id, ProjectID: project, Ref: "main", Status: status, CreatedAt: start.Add(-time.Second),
		StartedAt: &start, FinishedAt: &finished, UpdatedAt: finished}, rows...)
}

func (e *env) insertRun(r runs.Run, stages ...stageRow) {
	e.t.Helper()
	err := e.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		for _, s := range stages {
			if err := tx.Table("run_stages").Create(&s).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("insert run %s: %v", r.ID, err)
	}
}

func (e *env) projectID(name string) string {
	e.t.Helper()
	var id string
	if err := e.db.Raw("SELECT id FROM projects WHERE name = ?", name).Row().Scan(&id); err != nil {
		e.t.Fatalf("project %s: %v", name, err)
	}
	return id
}

// TestRunEstimates: the run API estimates progress, the time left and each stage's
// duration from the median of the project's last succeeded runs (failed and cancelled
// ones ignored), falls back to every project of the type, and estimates nothing without
// history — on real run and run_stages rows in both databases.
func TestRunEstimates(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) { testRunEstimates(t, driver) })
	}
}

func testRunEstimates(t *testing.T, driver string) {
	e := newEnv(t, driver)
	jar := project("api", "web-1")
	jar["type"] = "java-jar"
	if s := e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
		"projects": []any{project("shop", "web-1"), project("blog", "web-1"), project("fresh", "web-1"), jar}}, nil); s != 200 {
		t.Fatalf("apply = %d", s)
	}
	shop, blog, fresh, api := e.projectID("shop"), e.projectID("blog"), e.projectID("fresh"), e.projectID("api")
	now := time.Now().UTC().Truncate(time.Millisecond)
	day := now.Add(-24 * time.Hour)
	// shop: medians prepare 4s, install 20s, build 50s, finish 10s — 84s.
	e.pastRun("h1", shop, runs.StatusSucceeded, day, 6, 10, pastStage{"install", 10}, pastStage{"build", 50})
	e.pastRun("h2", shop, runs.StatusSucceeded, day.Add(time.Hour), 2, 8, pastStage{"install", 30}, pastStage{"build", 40})
	e.pastRun("h3", shop, runs.StatusSucceeded, day.Add(2*time.Hour), 4, 12, pastStage{"install", 20}, pastStage{"build", 60})
	// Failed and cancelled runs are ignored however long they took.
	e.pastRun("h4", shop, runs.StatusFailed, day.Add(3*time.Hour), 500, 500, pastStage{"install", 900}, pastStage{"build", 900})
	e.pastRun("h5", shop, runs.StatusCancelled, day.Add(4*time.Hour), 500, 500, pastStage{"install", 900})
	// blog, of the same type: only the type's history knows it.
	e.pastRun("h6", blog, runs.StatusSucceeded, day.Add(5*time.Hour), 8, 20, pastStage{"install", 40}, pastStage{"build", 70})

	// A run of shop 14s in: install started 10s ago.
	started, installAt := now.Add(-14*time.Second), now.Add(-10*time.Second)
	e.insertRun(runs.Run{ID: "r-shop", ProjectID: shop, Ref: "main", Status: runs.StatusBuilding, Progress: 20,
		CreatedAt: started, StartedAt: &started, UpdatedAt: now},
		stageRow{RunID: "r-shop", Seq: 1, Name: "install", Status: "running", StartedAt: installAt})
	// A run of fresh, which has no history of its own, preparing for 5s.
	freshStart := now.Add(-5 * time.Second)
	e.insertRun(runs.Run{ID: "r-fresh", ProjectID: fresh, Ref: "main", Status: runs.StatusBuilding, Progress: 10,
		CreatedAt: freshStart, StartedAt: &freshStart, UpdatedAt: now})
	// A run of api: no java-jar project ever succeeded.
	e.insertRun(runs.Run{ID: "r-api", ProjectID: api, Ref: "main", Status: runs.StatusBuilding, Progress: 15,
		CreatedAt: freshStart, StartedAt: &freshStart, UpdatedAt: now})

	var r RunBody
	if s := e.call("GET", "/api/v1/runs/r-shop", nil, &r); s != 200 {
		t.Fatalf("get run = %d", s)
	}
	if r.Basis != "project" || r.ExpectedMS != 84000 || r.PrepareExpectedMS != 4000 || r.FinishExpectedMS != 10000 {
		t.Errorf("shop estimate = basis %q, expected %d (prepare %d, finish %d); want project, 84000 (4000, 10000)",
			r.Basis, r.ExpectedMS, r.PrepareExpectedMS, r.FinishExpectedMS)
	}
	// The test's own time passes too: a slow machine may be a few seconds further on.
	if r.Progress < 16 || r.Progress > 18 { // (4s prepared + 10s of install) / 84s
		t.Errorf("shop progress = %d, want 16", r.Progress)
	}
	if r.ETASeconds == nil || *r.ETASeconds < 67 || *r.ETASeconds > 70 { // 10s of install + 50s build + 10s finish
		t.Errorf("shop eta_seconds = %v, want 70", r.ETASeconds)
	}
	if r.EstimatedFinishAt == nil || math.Abs(r.EstimatedFinishAt.Sub(now.Add(70*time.Second)).Seconds()) > 3 {
		t.Errorf("shop estimated_finish_at = %v, want about %v", r.EstimatedFinishAt, now.Add(70*time.Second))
	}
	wantStages := []struct {
		name, status string
		expected     int64
	}{{"install", "running", 20000}, {"build", "pending", 50000}}
	if len(r.Stages) != len(wantStages) {
		t.Fatalf("shop stages = %+v, want %v", r.Stages, wantStages)
	}
	for i, w := range wantStages {
		g := r.Stages[i]
		if g.Name != w.name || g.Status != w.status || g.ExpectedMS == nil || *g.ExpectedMS != w.expected || !g.ExpectedKnown || g.Seq != i+1 {
			t.Errorf("stage %d = %+v (expected %v), want %s %s expected %d", i, g, g.ExpectedMS, w.name, w.status, w.expected)
		}
	}
	if r.Stages[0].StartedAt == nil || r.Stages[1].StartedAt != nil {
		t.Errorf("stage times = %v, %v; want the running one's start and none for the pending one", r.Stages[0].StartedAt, r.Stages[1].StartedAt)
	}

	// fresh learns from every static project: prepare median(6,2,4,8)=5s, install 25s,
	// build 55s, finish 11s — 96s.
	r = RunBody{} // fields an answer leaves out must not keep the last one's values
	if s := e.call("GET", "/api/v1/runs/r-fresh", nil, &r); s != 200 {
		t.Fatalf("get run = %d", s)
	}
	if r.Basis != "type" || r.ExpectedMS != 96000 || r.Progress < 5 || r.Progress > 7 || r.ETASeconds == nil || *r.ETASeconds < 88 || *r.ETASeconds > 91 {
		t.Errorf("fresh estimate = basis %q expected %d progress %d eta %v; want type 96000 5 91", r.Basis, r.ExpectedMS, r.Progress, r.ETASeconds)
	}

	// api: nothing to learn from; the workers' checkpoint progress stands.
	r = RunBody{}
	if s := e.call("GET", "/api/v1/runs/r-api", nil, &r); s != 200 {
		t.Fatalf("get run = %d", s)
	}
	if r.Basis != "" || r.ExpectedMS != 0 || r.ETASeconds != nil || r.EstimatedFinishAt != nil || r.Progress != 15 || len(r.Stages) != 0 {
		t.Errorf("api estimate = %+v, want none and progress 15", r.Estimate)
	}

	// The list estimates the runs under way with a fixed number of queries.
	counted := countQueries(t, e.db)
	var list []RunBody
	if s := e.call("GET", "/api/v1/runs?limit=50", nil, &list); s != 200 {
		t.Fatalf("list runs = %d", s)
	}
	// One for the page, one for the stages of its runs under way, one for their history.
	if n := counted(); n != 3 {
		t.Errorf("listing runs took %d queries, want 3", n)
	}
	byID := map[string]RunBody{}
	for _, b := range list {
		byID[b.ID] = b
	}
	if b := byID["r-shop"]; b.ETASeconds == nil || b.Progress < 16 || b.Progress > 18 || b.Basis != "project" || b.Stages != nil {
		t.Errorf("listed shop run = progress %d eta %v basis %q stages %v; want 16, 70, project, none", b.Progress, b.ETASeconds, b.Basis, b.Stages)
	}
	if b := byID["h3"]; b.ETASeconds != nil || b.Basis != "" {
		t.Errorf("listed finished run = eta %v basis %q, want no estimate", b.ETASeconds, b.Basis)
	}

	// A finished run shows its stages, their durations and what was expected of them when it
	// was requested: h3 against h1 and h2 (install 20s, build 45s).
	r = RunBody{}
	if s := e.call("GET", "/api/v1/runs/h3", nil, &r); s != 200 {
		t.Fatalf("get run = %d", s)
	}
	if r.ETASeconds != nil || len(r.Stages) != 2 || r.Stages[0].DurationMS != 20000 || r.Stages[1].DurationMS != 60000 ||
		r.Stages[1].ExpectedMS == nil || *r.Stages[1].ExpectedMS != 45000 || r.Stages[0].FinishedAt == nil {
		t.Errorf("finished run = eta %v stages %+v; want no eta, install 20000 and build 60000 (expected 45000)", r.ETASeconds, r.Stages)
	}
	if r.Progress != 0 && r.Progress != 100 { // the stored progress of a finished run stays
		t.Errorf("finished run progress = %d", r.Progress)
	}
	// The first run had no history to be measured against.
	r = RunBody{}
	if s := e.call("GET", "/api/v1/runs/h1", nil, &r); s != 200 {
		t.Fatalf("get run = %d", s)
	}
	if len(r.Stages) != 2 || r.Stages[0].ExpectedMS != nil || r.Basis != "" {
		t.Errorf("first run = basis %q stages %+v, want stages without expectations", r.Basis, r.Stages)
	}
}

// countQueries counts the statements on the runs tables (runs, run_stages) that db runs
// from now on — not those of authentication and authorization; the returned function says
// how many so far.
func countQueries(t *testing.T, db *store.DB) func() int {
	t.Helper()
	var n atomic.Int32
	count := func(tx *gorm.DB) {
		if strings.Contains(tx.Statement.SQL.String(), "runs") || strings.Contains(tx.Statement.SQL.String(), "run_stages") {
			n.Add(1)
		}
	}
	if err := db.Callback().Query().After("gorm:query").Register("test:count_query", count); err != nil {
		t.Fatal(err)
	}
	if err := db.Callback().Row().After("gorm:row").Register("test:count_row", count); err != nil {
		t.Fatal(err)
	}
	return func() int { return int(n.Load()) }
}

// TestLiveStatusCarriesEstimate: the live log socket's status frames carry the estimate,
// and its percentage never goes backwards while the run moves on.
func TestLiveStatusCarriesEstimate(t *testing.T) {
	e := newEnv(t, store.SQLite)
	if s := e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
		"projects": []any{project("shop", "web-1")}}, nil); s != 200 {
		t.Fatalf("apply = %d", s)
	}
	shop := e.projectID("shop")
	now := time.Now().UTC().Truncate(time.Millisecond)
	e.pastRun("h1", shop, runs.StatusSucceeded, now.Add(-time.Hour), 10, 10, pastStage{"build", 80})
	started := now.Add(-5 * time.Second)
	e.insertRun(runs.Run{ID: "live", ProjectID: shop, Ref: "main", Status: runs.StatusBuilding, Progress: 10,
		CreatedAt: started, StartedAt: &started, UpdatedAt: now})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/v1/runs/live/logs/ws?access_token=" + token
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	defer conn.CloseNow()
	next := func() logMessage {
		t.Helper()
		for {
			var m logMessage
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				t.Fatalf("read: %v", err)
			}
			if m.Type != "line" {
				return m
			}
		}
	}
	m := next()
	if m.Type != "status" || m.Status != "building" || m.Progress < 5 || m.Progress > 7 || m.ETASeconds == nil || m.EstimatedFinishAt == nil {
		t.Fatalf("first frame = %+v, want building at 5%% of 100s with an ETA", m)
	}
	if d := m.EstimatedFinishAt.Sub(now.Add(95 * time.Second)); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("estimated finish %v, want about %v", m.EstimatedFinishAt, now.Add(95*time.Second))
	}
	last := m.Progress
	// The build stage runs; then the run deploys and succeeds.
	e.exec(`INSERT INTO run_stages (run_id, seq, name, status, started_at) VALUES ('live', 1, 'build', 'running', ?)`, now)
	e.exec(`UPDATE runs SET status = 'deploying' WHERE id = 'live'`)
	for m = next(); m.Type == "status" && m.Status == "building"; m = next() {
		if m.Progress < last {
			t.Fatalf("progress went from %d to %d", last, m.Progress)
		}
		last = m.Progress
	}
	if m.Type != "status" || m.Status != "deploying" || m.Progress < last || m.ETASeconds == nil {
		t.Fatalf("frame = %+v, want deploying at %d%% or more with an ETA", m, last)
	}
	e.exec(`UPDATE runs SET status = 'succeeded', progress = 100, finished_at = ? WHERE id = 'live'`, time.Now().UTC())
	for m = next(); m.Type != "end"; m = next() {
		if m.Status == "succeeded" && (m.Progress != 100 || m.ETASeconds != nil) {
			t.Errorf("final status frame = %+v, want 100%% and no ETA", m)
		}
	}
}

// TestHistoryQueryIsIndexed: SQLite's plan of the history query reads runs only through the
// indexes of migration 00014 (newest first, stopping at the LIMIT) and stages by their key,
// never scanning a table — with and without a cutoff.
func TestHistoryQueryIsIndexed(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	now := time.Now()
	for _, before := range []*time.Time{nil, &now} {
		q, args := historyQuery([]string{"p1", "p2"}, []string{"static"}, before)
		rows, err := db.Raw("EXPLAIN QUERY PLAN "+q, args...).Rows()
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(plan, "\n")
		for _, want := range []string{
			"SEARCH r USING INDEX runs_project_status_finished_at (project_id=? AND status=?",
			"SEARCH r USING INDEX runs_status_finished_at (status=?",
			"SEARCH s USING INDEX sqlite_autoindex_run_stages_1 (run_id=?)",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("plan lacks %q:\n%s", want, all)
			}
		}
		for _, bad := range []string{"SCAN r", "SCAN s", "SCAN p", "SCAN runs", "SCAN run_stages"} {
			for _, step := range plan {
				if strings.HasPrefix(step, bad) {
					t.Errorf("plan scans a table (%q):\n%s", step, all)
				}
			}
		}
	}
}
