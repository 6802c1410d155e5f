package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fabu.dev/libs/estimate"
	"fabu.dev/libs/runs"
)

// historyRuns is how many of the latest succeeded runs an estimate learns from.
const historyRuns = 10

// StageBody is one build stage of a run as the API shows it: a recorded one (run_stages),
// or, while the run is under way, one that history expects next (status "pending", no
// times). ExpectedMS is the median of the stage's recorded durations in recent succeeded
// runs; ExpectedKnown is false when that history has no stage of this name and the
// typical stage duration stands in.
type StageBody struct {
	Seq           int        `json:"seq"`
	Name          string     `json:"name"`
	Status        string     `json:"status"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	DurationMS    int64      `json:"duration_ms"`
	ExitCode      *int       `json:"exit_code"`
	ExpectedMS    *int64     `json:"expected_ms"`
	ExpectedKnown bool       `json:"expected_known"`
}

// Estimate is the part of a run body learnt from history (libs/estimate): absent fields
// mean there is no succeeded run of the project, nor of its type, to learn from.
type Estimate struct {
	// Basis says where the expectations came from: "project" (its last succeeded runs),
	// "type" (those of every project of its type, when it has none), or "" (none).
	Basis             string     `json:"estimate_basis,omitempty"`
	ExpectedMS        int64      `json:"expected_ms,omitempty"`         // the whole run
	PrepareExpectedMS int64      `json:"prepare_expected_ms,omitempty"` // start to first stage
	FinishExpectedMS  int64      `json:"finish_expected_ms,omitempty"`  // last stage to end: packaging, deploy
	ETASeconds        *int64     `json:"eta_seconds,omitempty"`         // building or deploying only
	EstimatedFinishAt *time.Time `json:"estimated_finish_at,omitempty"`
}

// stageRow is a row of run_stages, as the builder writes it.
type stageRow struct {
	RunID      string
	Seq        int
	Name       string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	DurationMS int64 `gorm:"column:duration_ms"`
	ExitCode   *int
}

func (r stageRow) stage() estimate.Stage {
	return estimate.Stage{Name: r.Name, Status: r.Status, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		Duration: time.Duration(r.DurationMS) * time.Millisecond}
}

// stagesOf loads the stages of runs ids in one query, by run.
func (s *Service) stagesOf(ctx context.Context, ids []string) (map[string][]stageRow, error) {
	out := map[string][]stageRow{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []stageRow
	if err := s.db.WithContext(ctx).Table("run_stages").Where("run_id IN ?", ids).Order("run_id, seq").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load run stages: %w", err)
	}
	for _, r := range rows {
		out[r.RunID] = append(out[r.RunID], r)
	}
	return out, nil
}

// profiles are the learnt profiles by project ID and by project type.
type profiles struct {
	byProject, byType map[string]estimate.Profile
}

// of returns the profile that applies to a run of project (of type typ) and its basis.
func (p profiles) of(project, typ string) (estimate.Profile, string) {
	if pr := p.byProject[project]; pr.Known() {
		return pr, "project"
	}
	if pr := p.byType[typ]; pr.Known() {
		return pr, "type"
	}
	return estimate.Profile{}, ""
}

// historyRow is a row of the history query: a succeeded run with one of its stages (none
// when it built no stage).
type historyRow struct {
	Kind            string // "project" or "type"
	Grp             string // the project ID or the type
	RunID           string
	StartedAt       time.Time
	FinishedAt      time.Time
	StageName       *string
	StageStatus     *string
	StageStartedAt  *time.Time
	StageFinishedAt *time.Time
	StageDurationMS *int64 `gorm:"column:stage_duration_ms"`
}

// history learns profiles from the last historyRuns succeeded runs of each project and of
// each type (rollbacks left out: they build nothing, so they would shorten every deploy's
// estimate), that finished before before (when not nil), in one query: a LIMITed, indexed
// read of runs per project (runs_project_status_finished_at) and per type
// (runs_status_finished_at), joined to their stages by run_stages' primary key.
func (s *Service) history(ctx context.Context, projects, types []string, before *time.Time) (profiles, error) {
	out := profiles{byProject: map[string]estimate.Profile{}, byType: map[string]estimate.Profile{}}
	if len(projects)+len(types) == 0 {
		return out, nil
	}
	q, args := historyQuery(projects, types, before)
	var rows []historyRow
	if err := s.db.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return out, fmt.Errorf("load run history: %w", err)
	}
	pasts := map[[2]string][]estimate.Past{}
	for i := 0; i < len(rows); {
		r := rows[i]
		key := [2]string{r.Kind, r.Grp}
		p := estimate.Past{Status: string(runs.StatusSucceeded), StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
		for ; i < len(rows) && rows[i].Kind == r.Kind && rows[i].Grp == r.Grp && rows[i].RunID == r.RunID; i++ {
			if st := rows[i]; st.StageName != nil && st.StageStartedAt != nil {
				stage := estimate.Stage{Name: *st.StageName, Status: *st.StageStatus, StartedAt: *st.StageStartedAt, FinishedAt: st.StageFinishedAt}
				if st.StageDurationMS != nil {
					stage.Duration = time.Duration(*st.StageDurationMS) * time.Millisecond
				}
				p.Stages = append(p.Stages, stage)
			}
		}
		pasts[key] = append(pasts[key], p)
	}
	for key, ps := range pasts {
		if key[0] == "project" {
			out.byProject[key[1]] = estimate.Learn(ps)
		} else {
			out.byType[key[1]] = estimate.Learn(ps)
		}
	}
	return out, nil
}

// historyQuery is the one statement history runs: per project and per type, a LIMITed read
// of the latest succeeded runs, then their succeeded stages.
func historyQuery(projects, types []string, before *time.Time) (string, []any) {
	cut := ""
	if before != nil {
		cut = " AND r.finished_at < ?"
	}
	var parts []string
	var args []any
	branch := func(kind, grpCol, from, where, value string) {
		parts = append(parts, fmt.Sprintf(`SELECT * FROM (SELECT '%s' AS kind, %s AS grp, r.id AS run_id, r.started_at, r.finished_at
 FROM %s WHERE %s = ? AND r.status = ? AND r.rollback_of = '' AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL%s
 ORDER BY r.finished_at DESC LIMIT %d) AS h%d`, kind, grpCol, from, where, cut, historyRuns, len(parts)))
		args = append(args, value, runs.StatusSucceeded)
		if before != nil {
			args = append(args, before.UTC())
		}
	}
	for _, id := range projects {
		branch("project", "r.project_id", "runs r", "r.project_id", id)
	}
	for _, t := range types {
		branch("type", "p.type", "runs r JOIN projects p ON p.id = r.project_id", "p.type", t)
	}
	q := `SELECT h.kind, h.grp, h.run_id, h.started_at, h.finished_at, s.name AS stage_name, s.status AS stage_status,
 s.started_at AS stage_started_at, s.finished_at AS stage_finished_at, s.duration_ms AS stage_duration_ms
 FROM (` + strings.Join(parts, " UNION ALL ") + `) AS h
 LEFT JOIN run_stages s ON s.run_id = h.run_id AND s.status = ?
 ORDER BY h.kind, h.grp, h.finished_at DESC, h.run_id, s.seq`
	args = append(args, estimate.StageSucceeded)
	return q, args
}

// estimated fills in the estimate of each body in bodies (rows are their runs) that is not
// final, or of every one when all is set; withStages adds the stages. It reads the stages
// of those runs in one query and the history in one more, whatever the number of runs.
func (s *Service) estimated(ctx context.Context, rows []runRow, bodies []RunBody, all, withStages bool) error {
	var pick []int
	var ids []string
	projSeen, typeSeen := map[string]bool{}, map[string]bool{}
	var projects, types []string
	for i, r := range rows {
		if (!all && r.Status.Final()) || r.RollbackOf != "" { // a rollback's progress is its own: no history predicts it
			continue
		}
		pick = append(pick, i)
		ids = append(ids, r.ID)
		if !projSeen[r.ProjectID] {
			projSeen[r.ProjectID] = true
			projects = append(projects, r.ProjectID)
		}
		if !typeSeen[r.ProjectType] {
			typeSeen[r.ProjectType] = true
			types = append(types, r.ProjectType)
		}
	}
	if len(pick) == 0 {
		return nil
	}
	stages, err := s.stagesOf(ctx, ids)
	if err != nil {
		return err
	}
	// A finished run is shown against what was expected when it was requested.
	var before *time.Time
	if len(pick) == 1 && rows[pick[0]].Status.Final() {
		before = &rows[pick[0]].CreatedAt
	}
	prof, err := s.history(ctx, projects, types, before)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, i := range pick {
		r := rows[i]
		p, basis := prof.of(r.ProjectID, r.ProjectType)
		applyEstimate(&bodies[i], r.Run, p, basis, stages[r.ID], now, withStages)
	}
	return nil
}

// applyEstimate sets b's estimate from profile p (basis says whose it is) for run r with
// its recorded stages at now. Without history b keeps the progress the run's workers
// record at their checkpoints.
func applyEstimate(b *RunBody, r runs.Run, p estimate.Profile, basis string, recorded []stageRow, now time.Time, withStages bool) {
	er := estimate.Run{Status: string(r.Status), StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
	for _, st := range recorded {
		er.Stages = append(er.Stages, st.stage())
	}
	e := estimate.Of(p, er, now)
	if withStages {
		// Stages still to come only while the build may reach them: a deploying run that
		// recorded none reused an artifact and runs none.
		upcoming := r.Status == runs.StatusRequested || r.Status == runs.StatusQueued || r.Status == runs.StatusBuilding
		b.Stages = stageBodies(recorded, e, upcoming)
	}
	if !e.Known {
		return
	}
	b.Basis = basis
	b.ExpectedMS = e.Expected.Milliseconds()
	b.PrepareExpectedMS, b.FinishExpectedMS = e.Prepare.Milliseconds(), e.Finish.Milliseconds()
	if !r.Status.Final() {
		b.Progress = e.Percent
	}
	if !e.FinishAt.IsZero() {
		eta := int64((e.Remaining + time.Second - 1) / time.Second) // rounded up: never "0s" while running
		finish := e.FinishAt.UTC().Truncate(time.Second)
		b.ETASeconds, b.EstimatedFinishAt = &eta, &finish
	}
}

// stageBodies lists a run's recorded stages, then, if the run may still reach them
// (pending), the ones history expects after them, with their expected durations.
func stageBodies(recorded []stageRow, e estimate.Estimate, pending bool) []StageBody {
	out := make([]StageBody, 0, len(e.Stages))
	for i, st := range recorded {
		sb := StageBody{Seq: st.Seq, Name: st.Name, Status: st.Status, StartedAt: &st.StartedAt, FinishedAt: st.FinishedAt,
			DurationMS: st.DurationMS, ExitCode: st.ExitCode}
		if e.Known && i < len(e.Stages) {
			ms := e.Stages[i].Expected.Milliseconds()
			sb.ExpectedMS, sb.ExpectedKnown = &ms, e.Stages[i].Known
		}
		out = append(out, sb)
	}
	seq := 0
	if n := len(recorded); n > 0 {
		seq = recorded[n-1].Seq
	}
	for i := len(recorded); pending && i < len(e.Stages); i++ {
		seq++
		ms := e.Stages[i].Expected.Milliseconds()
		out = append(out, StageBody{Seq: seq, Name: e.Stages[i].Name, Status: estimate.StagePending, ExpectedMS: &ms, ExpectedKnown: true})
	}
	return out
}

// runEstimator estimates one run again and again, for the live log socket: the history is
// learnt once, the run's stages are read at every look.
type runEstimator struct {
	s      *Service
	loaded bool
	prof   estimate.Profile
	basis  string
}

// apply sets b's progress and estimate as of now.
func (l *runEstimator) apply(ctx context.Context, b *RunBody) error {
	if b.RollbackOf != "" { // as in estimated
		return nil
	}
	if !l.loaded {
		var typ string
		if err := l.s.db.WithContext(ctx).Table("projects").Select("type").Where("id = ?", b.ProjectID).Scan(&typ).Error; err != nil {
			return fmt.Errorf("load type of project %s: %w", b.ProjectID, err)
		}
		prof, err := l.s.history(ctx, []string{b.ProjectID}, []string{typ}, nil)
		if err != nil {
			return err
		}
		l.prof, l.basis = prof.of(b.ProjectID, typ)
		l.loaded = true
	}
	if !l.prof.Known() {
		return nil
	}
	stages, err := l.s.stagesOf(ctx, []string{b.ID})
	if err != nil {
		return err
	}
	r := runs.Run{ID: b.ID, Status: runs.Status(b.Status), StartedAt: b.StartedAt, FinishedAt: b.FinishedAt}
	applyEstimate(b, r, l.prof, l.basis, stages[b.ID], time.Now().UTC(), false)
	return nil
}
