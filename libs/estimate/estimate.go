// Package estimate predicts how long a run will take from how long recent successful runs
// took: the expected duration of each part of a run, a percentage and the time left.
//
// A run is seen as a line of phases: "prepare" (from the run's start to its first build
// stage: fetch and checkout), then its build stages (the run_stages rows), then "finish"
// (from the last stage's end to the run's end: packaging and the deploy). Learn turns the
// history into a Profile — the median of each phase over the runs, stages matched by name —
// and Of applies a profile to a run at a moment.
//
// The percentage weighs each phase by its expected duration: a finished phase counts in
// full, the running one by elapsed/expected (at most in full, so a stage slower than
// expected holds the bar instead of overshooting), a future one not at all. For a run
// whose stages match the profile it never goes backwards as time passes or stages end,
// and it stays below 100 until the run succeeds. The time left is what the unfinished
// phases are expected to take beyond what they have taken already.
//
// The package has no storage: callers load the history (see the gateway's runs.go) and
// pass times in, so everything here is a pure function of its arguments.
package estimate

import (
	"slices"
	"time"
)

// Stage statuses as run_stages records them.
const (
	StageRunning   = "running"
	StageSucceeded = "succeeded"
	StagePending   = "pending" // not started yet; Of reports stages it expects this way
)

// Run statuses the estimator distinguishes (libs/runs spells the same values).
const (
	runRequested = "requested"
	runQueued    = "queued"
	runDeploying = "deploying"
	runSucceeded = "succeeded"
)

// Phase names of the parts of a run that are not build stages.
const (
	PhasePrepare = "prepare"
	PhaseFinish  = "finish"
)

// Stage is one build stage of a run as recorded in run_stages.
type Stage struct {
	Name       string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Duration   time.Duration // recorded once the stage ended
}

// Past is a finished run of the history: its status, its span and its stages in order.
// Only succeeded runs count: a failed or cancelled run stopped early and says nothing
// about how long a whole run takes.
type Past struct {
	Status     string
	StartedAt  time.Time
	FinishedAt time.Time
	Stages     []Stage
}

// Run is the run to estimate.
type Run struct {
	Status     string // a runs.Status value
	StartedAt  *time.Time
	FinishedAt *time.Time
	Stages     []Stage // its run_stages rows in order
}

// StageProfile is a stage as history knows it.
type StageProfile struct {
	Name     string
	Expected time.Duration
}

// Profile is what a run is expected to take, learnt from Runs past runs.
type Profile struct {
	Runs    int
	Prepare time.Duration
	Stages  []StageProfile // in the order of the newest run that had stages
	Finish  time.Duration
	// Typical is the median duration of any stage: what a stage history has not seen
	// (a stage added to the pipeline since) is expected to take.
	Typical time.Duration
}

// Known reports whether p was learnt from any run.
func (p Profile) Known() bool { return p.Runs > 0 }

// Total is the expected duration of a whole run under p.
func (p Profile) Total() time.Duration {
	t := p.Prepare + p.Finish
	for _, s := range p.Stages {
		t += s.Expected
	}
	return t
}

func (p Profile) expected(name string) (time.Duration, bool) {
	for _, s := range p.Stages {
		if s.Name == name {
			return s.Expected, true
		}
	}
	return p.Typical, false
}

// Learn builds a profile from past runs, newest first, counting the succeeded ones. Runs that built no
// stages (they reused an artifact) say nothing about stages; they count only when no run
// had stages, as a run of one "finish" phase. Stages that did not succeed are ignored.
func Learn(past []Past) Profile {
	var withStages, without []Past
	for _, r := range past {
		if r.Status != runSucceeded || r.FinishedAt.Before(r.StartedAt) {
			continue // stopped early, or a clock gone backwards: not a sample
		}
		if len(succeeded(r.Stages)) > 0 {
			withStages = append(withStages, r)
		} else {
			without = append(without, r)
		}
	}
	if len(withStages) == 0 {
		if len(without) == 0 {
			return Profile{}
		}
		totals := make([]time.Duration, len(without))
		for i, r := range without {
			totals[i] = r.FinishedAt.Sub(r.StartedAt)
		}
		return Profile{Runs: len(without), Finish: median(totals)}
	}
	var prepare, finish, all []time.Duration
	byName := map[string][]time.Duration{}
	for _, r := range withStages {
		st := succeeded(r.Stages)
		prepare = append(prepare, nonNegative(st[0].StartedAt.Sub(r.StartedAt)))
		finish = append(finish, nonNegative(r.FinishedAt.Sub(end(st[len(st)-1]))))
		for _, s := range st {
			byName[s.Name] = append(byName[s.Name], s.Duration)
			all = append(all, s.Duration)
		}
	}
	p := Profile{Runs: len(withStages), Prepare: median(prepare), Finish: median(finish), Typical: median(all)}
	for _, s := range succeeded(withStages[0].Stages) {
		p.Stages = append(p.Stages, StageProfile{Name: s.Name, Expected: median(byName[s.Name])})
	}
	return p
}

func succeeded(st []Stage) []Stage {
	var out []Stage
	for _, s := range st {
		if s.Status == StageSucceeded {
			out = append(out, s)
		}
	}
	return out
}

// median of ds (the mean of the middle two for an even count); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func nonNegative(d time.Duration) time.Duration { return max(d, 0) }

// StageEstimate is one build stage of an estimated run: a recorded one with its status,
// or one history expects next (StagePending).
type StageEstimate struct {
	Name     string
	Status   string
	Expected time.Duration
	// Known tells whether Expected was learnt for this stage's name, rather than being
	// the typical duration of a stage.
	Known bool
}

// Estimate is what a profile says about a run at a moment.
type Estimate struct {
	// Known is false when there is no history: nothing else is set then.
	Known bool
	// Percent is 0-99 until the run succeeds (100).
	Percent int
	// Expected is the whole run's expected duration: the sum of its phases' expectations.
	Expected time.Duration
	// Remaining is the time the run is still expected to take; FinishAt is now plus it.
	// Both are zero unless the run is building or deploying.
	Remaining time.Duration
	FinishAt  time.Time
	Prepare   time.Duration // expected duration of the phase before the stages
	Finish    time.Duration // and of the one after them
	Stages    []StageEstimate
}

// phase is one part of a run's line: its expected duration and how far it got.
type phase struct {
	expected time.Duration
	elapsed  time.Duration
	done     bool
}

// Of estimates run r under profile p at time now.
func Of(p Profile, r Run, now time.Time) Estimate {
	if !p.Known() {
		return Estimate{}
	}
	e := Estimate{Known: true, Prepare: p.Prepare, Finish: p.Finish, Stages: plannedStages(p, r.Stages)}
	if r.FinishedAt != nil && r.Status != runDeploying {
		now = *r.FinishedAt // a final run is judged when it ended
	}
	phases := line(e, r, now)
	var total, done, remaining time.Duration
	for _, ph := range phases {
		total += ph.expected
		switch {
		case ph.done:
			done += ph.expected
		default:
			done += min(ph.elapsed, ph.expected)
			remaining += nonNegative(ph.expected - ph.elapsed)
		}
	}
	e.Expected = total
	switch {
	case r.Status == runSucceeded:
		e.Percent = 100
		return e
	case total > 0:
		e.Percent = min(int(done*100/total), 99)
	}
	if r.StartedAt != nil && r.FinishedAt == nil && r.Status != runRequested && r.Status != runQueued {
		e.Remaining = remaining
		e.FinishAt = now.Add(remaining)
	}
	return e
}

// plannedStages lists the run's recorded stages followed by the stages history expects
// after them: those of the profile after the last one the run has recorded (all of them
// when it recorded none of the profile's).
func plannedStages(p Profile, recorded []Stage) []StageEstimate {
	out := make([]StageEstimate, 0, len(recorded)+len(p.Stages))
	seen := map[string]bool{}
	last := -1
	for _, s := range recorded {
		exp, known := p.expected(s.Name)
		out = append(out, StageEstimate{Name: s.Name, Status: s.Status, Expected: exp, Known: known})
		seen[s.Name] = true
		for i, ps := range p.Stages {
			if ps.Name == s.Name {
				last = max(last, i)
			}
		}
	}
	for _, ps := range p.Stages[last+1:] {
		if !seen[ps.Name] {
			out = append(out, StageEstimate{Name: ps.Name, Status: StagePending, Expected: ps.Expected, Known: true})
		}
	}
	return out
}

// line lays run r out as phases at time now: prepare, the stages of e, finish. Each phase
// begins where the one before it ended, so no moment of the run is left out (the short gap
// between two stages counts to the later one) and no moment counts twice.
func line(e Estimate, r Run, now time.Time) []phase {
	phases := make([]phase, 0, len(e.Stages)+2)
	if r.StartedAt == nil || r.Status == runRequested || r.Status == runQueued {
		phases = append(phases, phase{expected: e.Prepare})
		for _, s := range e.Stages {
			phases = append(phases, phase{expected: s.Expected})
		}
		return append(phases, phase{expected: e.Finish})
	}
	// The build is over once the run deploys or succeeded: stages history expected but the
	// run did not record did not run, and the time since the build goes to finish.
	built := r.Status == runDeploying || r.Status == runSucceeded
	prep := phase{expected: e.Prepare}
	var from time.Time // where the current phase began; zero until known
	switch {
	case len(r.Stages) > 0:
		prep.done = true
		from = r.Stages[0].StartedAt
	case built: // nothing was built (an artifact was reused): the rest is finish
		prep.done = true
		from = r.StartedAt.Add(e.Prepare)
	default:
		prep.elapsed = nonNegative(now.Sub(*r.StartedAt))
	}
	phases = append(phases, prep)
	current := -1 // index in phases of the phase the run is in, once the stages began
	for i, s := range e.Stages {
		ph := phase{expected: s.Expected}
		switch {
		case i < len(r.Stages):
			rs := r.Stages[i]
			if rs.StartedAt.Before(from) || from.IsZero() {
				from = rs.StartedAt
			}
			switch rs.Status {
			case StageRunning:
				ph.elapsed = nonNegative(now.Sub(from))
				current = len(phases)
			case StageSucceeded:
				ph.done = true
				from = end(rs)
			default: // failed, cancelled or skipped: it ended without doing its work
				ph.elapsed = nonNegative(end(rs).Sub(from))
				from = end(rs)
				if current < 0 {
					current = len(phases)
				}
			}
		case built:
			ph.done = true
		case current < 0 && !from.IsZero():
			current = len(phases) // the next stage history expects: the run is about to start it
			ph.elapsed = nonNegative(now.Sub(from))
		}
		phases = append(phases, ph)
	}
	fin := phase{expected: e.Finish}
	if current < 0 && !from.IsZero() {
		fin.elapsed = nonNegative(now.Sub(from)) // packaging, then the deploy
	}
	return append(phases, fin)
}

// end is when recorded stage s ended.
func end(s Stage) time.Time {
	if s.FinishedAt != nil {
		return *s.FinishedAt
	}
	return s.StartedAt.Add(s.Duration)
}
