package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"fabu.dev/libs/runlog"
	"fabu.dev/services/builder/execx"
	"fabu.dev/services/builder/pipeline"
)

// Stage statuses in run_stages.
const (
	stageRunning   = "running"
	stageSucceeded = "succeeded"
	stageFailed    = "failed"
	stageSkipped   = "skipped"
	stageCancelled = "cancelled"
)

// Progress of a run while its stages run: the stages share the span between checkout and
// packaging in proportion to their number (later: to their recorded durations).
const (
	progressCheckedOut = 20
	progressStagesDone = 50
)

// stageRow is one row of run_stages: a stage of a run's latest build attempt.
type stageRow struct {
	RunID      string `gorm:"primaryKey"`
	Seq        int    `gorm:"primaryKey"`
	Name       string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	DurationMS int64 `gorm:"column:duration_ms"`
	ExitCode   *int
}

func (stageRow) TableName() string { return "run_stages" }

// stageRun is what every stage of one build shares.
type stageRun struct {
	runID   string
	root    string // the checkout
	home    string // the run's HOME, outside the checkout
	path    string // PATH of the stages
	env     map[string]string
	secrets map[string]string
	log     *runlog.Writer
	offline bool // the project's stages run without a network
}

// runStages runs plan's stages in order, each recorded in run_stages and framed by marker
// lines in the log. The first stage that fails stops the build; the stages after it are
// recorded as skipped. A cancelled context kills the running stage's process group.
func (s *Service) runStages(ctx context.Context, sr stageRun, plan pipeline.Plan, progress chan<- int) error {
	// A run handed back to the queue starts its stages over: its rows describe the latest
	// attempt.
	db := s.db.WithContext(context.WithoutCancel(ctx))
	if err := db.Where("run_id = ?", sr.runID).Delete(&stageRow{}).Error; err != nil {
		return fmt.Errorf("clear stages of an earlier attempt: %w", err)
	}
	if s.sandbox != nil {
		// The builder wrote the checkout and restored the caches; the stages' user
		// writes there from now on.
		if err := os.MkdirAll(sr.home, 0o700); err != nil {
			return fmt.Errorf("create the run's home: %w", err)
		}
		if err := s.sandbox.Own(sr.root, sr.home); err != nil {
			return err
		}
	}
	if sr.offline {
		sr.log.Printf("build stages run without a network (the project's build_offline)")
	}
	n := len(plan.Stages)
	for i, st := range plan.Stages {
		if err := s.runStage(ctx, sr, plan, i, st); err != nil {
			s.skipStages(sr.runID, plan.Stages[i+1:], i+2)
			return err
		}
		sendProgress(progress, progressCheckedOut+(progressStagesDone-progressCheckedOut)*(i+1)/n)
	}
	return nil
}

// runStage runs stage st (index i) of plan.
func (s *Service) runStage(ctx context.Context, sr stageRun, plan pipeline.Plan, i int, st pipeline.Stage) error {
	db := s.db.WithContext(context.WithoutCancel(ctx))
	row := stageRow{RunID: sr.runID, Seq: i + 1, Name: st.Name, Status: stageRunning, StartedAt: time.Now().UTC()}
	if err := db.Create(&row).Error; err != nil {
		return fmt.Errorf("record stage %s: %w", st.Name, err)
	}
	sr.log.Printf("▶ stage %s: %s", st.Name, commandLine(st.Command))
	env := plan.StageEnv(st)
	for k, v := range sr.env {
		env[k] = v
	}
	homeEnv(env, sr.home)
	spec := execx.Spec{
		Name: st.Name, Argv: st.Command, Root: sr.root, Dir: st.Dir, Home: sr.home, Path: sr.path,
		Env: env, Secrets: stageSecrets(st, sr.secrets), Timeout: st.Timeout, // only what the stage declares
		Stdout: sr.log.Stream(runlog.StreamStdout), Stderr: sr.log.Stream(runlog.StreamStderr),
		NoNetwork: sr.offline,
	}
	switch {
	case st.Image != "":
		spec.Image, spec.Container = st.Image, s.container()
	case !st.Engine:
		spec.Sandbox = s.sandbox // nil only when opted out: the build checked
	}
	res, err := execx.Run(ctx, spec)
	now := time.Now().UTC()
	row.FinishedAt = &now
	row.DurationMS = res.Duration.Milliseconds()
	var xe *execx.ExitError
	switch {
	case err == nil:
		row.Status = stageSucceeded
		code := res.ExitCode
		row.ExitCode = &code
		sr.log.Printf("✔ stage %s %s", st.Name, seconds(res.Duration))
	case ctx.Err() != nil:
		row.Status = stageCancelled
		sr.log.Printf("✘ stage %s cancelled after %s", st.Name, seconds(res.Duration))
	default:
		row.Status = stageFailed
		if errors.As(err, &xe) && xe.Code >= 0 {
			code := xe.Code
			row.ExitCode = &code
		}
		sr.log.Printf("✘ stage %s failed: %s", st.Name, strings.TrimPrefix(err.Error(), "stage "+st.Name+": "))
	}
	if uerr := db.Model(&stageRow{}).Where("run_id = ? AND seq = ?", row.RunID, row.Seq).Updates(map[string]any{
		"status": row.Status, "finished_at": row.FinishedAt, "duration_ms": row.DurationMS, "exit_code": row.ExitCode,
	}).Error; uerr != nil {
		s.log.Error("record stage result", "run", sr.runID, "stage", st.Name, "err", uerr)
	}
	return err
}

// homeEnv points the JVM build tools at the run's HOME: the JVM takes user.home from the
// user database, not from $HOME, so without this Maven would fill the builder user's own
// ~/.m2, shared by every project and never saved with the run's caches. A project's own
// MAVEN_OPTS come after, so its -D options win.
func homeEnv(env map[string]string, home string) {
	env["MAVEN_OPTS"] = strings.TrimSpace("-Duser.home=" + home + " " + env["MAVEN_OPTS"])
	if env["GRADLE_USER_HOME"] == "" {
		env["GRADLE_USER_HOME"] = home + "/.gradle"
	}
}

// skipStages records stages that did not run because an earlier one failed; the first of
// them has sequence number seq.
func (s *Service) skipStages(runID string, stages []pipeline.Stage, seq int) {
	now := time.Now().UTC()
	for i, st := range stages {
		row := stageRow{RunID: runID, Seq: seq + i, Name: st.Name, Status: stageSkipped, StartedAt: now, FinishedAt: &now}
		if err := s.db.Create(&row).Error; err != nil {
			s.log.Error("record skipped stage", "run", runID, "stage", st.Name, "err", err)
		}
	}
}

// commandLine shows argv in the log: arguments with spaces or quotes are quoted so the
// line reads like the command that ran. It is for people; nothing ever parses it.
func commandLine(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts[i] = a
	}
	line := strings.Join(parts, " ")
	if len(line) > 300 {
		line = line[:300] + " …"
	}
	return line
}

// seconds formats d as the markers show durations: "12.3s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// sendProgress reports p to the heartbeat without ever blocking the build.
func sendProgress(progress chan<- int, p int) {
	select {
	case progress <- p:
	default:
	}
}
