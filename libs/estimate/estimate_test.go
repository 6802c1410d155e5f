package estimate

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time      { return t0.Add(sec(s)) }
func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
func ptr(t time.Time) *time.Time  { return &t }

// st is a stage of a made-up run: its name and how many seconds it took.
type st struct {
	name string
	secs float64
}

// past is a finished run starting at start (seconds after t0): prepare seconds, then its
// stages back to back, then finish seconds.
func past(status string, start, prepare, finish float64, stages ...st) Past {
	p := Past{Status: status, StartedAt: at(start)}
	cur := start + prepare
	for _, s := range stages {
		p.Stages = append(p.Stages, Stage{Name: s.name, Status: StageSucceeded, StartedAt: at(cur),
			FinishedAt: ptr(at(cur + s.secs)), Duration: sec(s.secs)})
		cur += s.secs
	}
	p.FinishedAt = at(cur + finish)
	return p
}

func TestLearn(t *testing.T) {
	failedMidway := past("failed", 0, 1, 0, st{"install", 1})
	failedMidway.Stages = append(failedMidway.Stages, Stage{Name: "build", Status: "failed", StartedAt: at(2), FinishedAt: ptr(at(3)), Duration: sec(1)})
	tests := []struct {
		name string
		past []Past
		want Profile
	}{
		{"no history", nil, Profile{}},
		{"only failed and cancelled runs", []Past{
			past("failed", 0, 5, 5, st{"build", 1}), past("cancelled", 100, 5, 5, st{"build", 50}),
		}, Profile{}},
		{"median of three", []Past{
			past("succeeded", 300, 4, 12, st{"install", 20}, st{"build", 60}),
			past("succeeded", 200, 2, 8, st{"install", 30}, st{"build", 40}),
			past("succeeded", 100, 6, 10, st{"install", 10}, st{"build", 50}),
		}, Profile{Runs: 3, Prepare: sec(4), Finish: sec(10), Typical: sec(35),
			Stages: []StageProfile{{"install", sec(20)}, {"build", sec(50)}}}},
		{"even count takes the mean of the middle two", []Past{
			past("succeeded", 100, 2, 2, st{"build", 10}),
			past("succeeded", 0, 4, 6, st{"build", 20}),
		}, Profile{Runs: 2, Prepare: sec(3), Finish: sec(4), Typical: sec(15), Stages: []StageProfile{{"build", sec(15)}}}},
		{"failed and cancelled runs are ignored", []Past{
			past("succeeded", 500, 2, 2, st{"build", 10}),
			past("failed", 400, 100, 100, st{"build", 1000}),
			failedMidway,
			past("cancelled", 300, 100, 100, st{"build", 1000}),
			past("succeeded", 0, 4, 6, st{"build", 20}),
		}, Profile{Runs: 2, Prepare: sec(3), Finish: sec(4), Typical: sec(15), Stages: []StageProfile{{"build", sec(15)}}}},
		{"stage order is the newest run's; a stage it lacks is still typical", []Past{
			past("succeeded", 200, 1, 1, st{"build", 10}, st{"install", 4}),
			past("succeeded", 100, 1, 1, st{"install", 6}, st{"test", 30}, st{"build", 20}),
		}, Profile{Runs: 2, Prepare: sec(1), Finish: sec(1), Typical: sec(10),
			Stages: []StageProfile{{"build", sec(15)}, {"install", sec(5)}}}},
		{"runs that reused an artifact count only when no run built", []Past{
			past("succeeded", 300, 0, 7),
			past("succeeded", 200, 0, 9),
			past("succeeded", 100, 0, 30),
		}, Profile{Runs: 3, Finish: sec(9)}},
		{"runs that reused an artifact are left out beside built ones", []Past{
			past("succeeded", 300, 0, 7),
			past("succeeded", 100, 2, 3, st{"build", 40}),
		}, Profile{Runs: 1, Prepare: sec(2), Finish: sec(3), Typical: sec(40), Stages: []StageProfile{{"build", sec(40)}}}},
		{"a run that ended before it started is not a sample", []Past{
			{Status: "succeeded", StartedAt: at(100), FinishedAt: at(50)},
			past("succeeded", 0, 1, 1, st{"build", 8}),
		}, Profile{Runs: 1, Prepare: sec(1), Finish: sec(1), Typical: sec(8), Stages: []StageProfile{{"build", sec(8)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Learn(tt.past)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Learn() = %+v, want %+v", got, tt.want)
			}
			if got.Known() != (tt.want.Runs > 0) {
				t.Errorf("Known() = %v, want %v", got.Known(), tt.want.Runs > 0)
			}
		})
	}
}

// profile: prepare 10s, install 20s, build 60s, finish 10s — 100s in all.
var profile = Profile{Runs: 5, Prepare: sec(10), Finish: sec(10), Typical: sec(40),
	Stages: []StageProfile{{"install", sec(20)}, {"build", sec(60)}}}

// rs is a recorded stage from start to end seconds after t0; end < 0 is still running.
func rs(name, status string, start, end float64) Stage {
	s := Stage{Name: name, Status: status, StartedAt: at(start)}
	if end >= 0 {
		s.FinishedAt, s.Duration = ptr(at(end)), sec(end-start)
	}
	return s
}

func TestOf(t *testing.T) {
	started := ptr(at(0))
	tests := []struct {
		name      string
		profile   Profile
		run       Run
		now       float64
		percent   int
		remaining float64 // seconds; -1: no estimate of the time left
		expected  float64
		stages    []StageEstimate
	}{
		{name: "no history estimates nothing", profile: Profile{},
			run: Run{Status: "building", StartedAt: started}, now: 5, percent: 0, remaining: -1},
		{name: "queued: nothing done, no time left estimated", profile: profile,
			run: Run{Status: "queued"}, now: 5, percent: 0, remaining: -1, expected: 100,
			stages: []StageEstimate{{"install", StagePending, sec(20), true}, {"build", StagePending, sec(60), true}}},
		{name: "preparing", profile: profile,
			run: Run{Status: "building", StartedAt: started}, now: 5, percent: 5, remaining: 95, expected: 100},
		{name: "preparation slower than expected holds at its share", profile: profile,
			run: Run{Status: "building", StartedAt: started}, now: 30, percent: 10, remaining: 90, expected: 100},
		{name: "within a stage by elapsed over expected", profile: profile,
			run: Run{Status: "building", StartedAt: started, Stages: []Stage{rs("install", StageRunning, 10, -1)}},
			now: 20, percent: 20, remaining: 80, expected: 100,
			stages: []StageEstimate{{"install", StageRunning, sec(20), true}, {"build", StagePending, sec(60), true}}},
		{name: "between stages the next one is under way", profile: profile,
			run: Run{Status: "building", StartedAt: started, Stages: []Stage{rs("install", StageSucceeded, 10, 35)}},
			now: 45, percent: 40, remaining: 60, expected: 100},
		{name: "a stage slower than expected holds the bar; the time left is what follows it", profile: profile,
			run: Run{Status: "building", StartedAt: started, Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageRunning, 30, -1)}},
			now: 150, percent: 90, remaining: 10, expected: 100},
		{name: "packaging after the last stage", profile: profile,
			run: Run{Status: "building", StartedAt: started, Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageSucceeded, 30, 90)}},
			now: 92, percent: 92, remaining: 8, expected: 100},
		{name: "deploying", profile: profile,
			run: Run{Status: "deploying", StartedAt: started, Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageSucceeded, 30, 90)}},
			now: 95, percent: 95, remaining: 5, expected: 100},
		{name: "a deploy slower than expected stays below 100", profile: profile,
			run: Run{Status: "deploying", StartedAt: started, Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageSucceeded, 30, 90)}},
			now: 500, percent: 99, remaining: 0, expected: 100},
		{name: "deploying an artifact that was reused: no stages ran", profile: profile,
			run: Run{Status: "deploying", StartedAt: started}, now: 15, percent: 95, remaining: 5, expected: 100,
			stages: []StageEstimate{{"install", StagePending, sec(20), true}, {"build", StagePending, sec(60), true}}},
		{name: "succeeded is 100", profile: profile,
			run: Run{Status: "succeeded", StartedAt: started, FinishedAt: ptr(at(70)), Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageSucceeded, 30, 60)}},
			now: 500, percent: 100, remaining: -1, expected: 100},
		{name: "failed is judged when it ended", profile: profile,
			run: Run{Status: "failed", StartedAt: started, FinishedAt: ptr(at(40)), Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", "failed", 30, 40)}},
			now: 500, percent: 40, remaining: -1, expected: 100,
			stages: []StageEstimate{{"install", StageSucceeded, sec(20), true}, {"build", "failed", sec(60), true}}},
		{name: "partial history: a stage it never saw is expected to take a typical stage's time", profile: profile,
			run: Run{Status: "building", StartedAt: started, Stages: []Stage{
				rs("install", StageSucceeded, 10, 30), rs("build", StageSucceeded, 30, 90), rs("e2e", StageRunning, 90, -1)}},
			now: 110, percent: 78, remaining: 30, expected: 140,
			stages: []StageEstimate{{"install", StageSucceeded, sec(20), true}, {"build", StageSucceeded, sec(60), true}, {"e2e", StageRunning, sec(40), false}}},
		{name: "partial history: a stage the run went past is dropped from its plan", profile: profile,
			run: Run{Status: "deploying", StartedAt: started, Stages: []Stage{rs("build", StageSucceeded, 10, 70)}},
			now: 75, percent: 93, remaining: 5, expected: 80,
			stages: []StageEstimate{{"build", StageSucceeded, sec(60), true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := at(tt.now)
			got := Of(tt.profile, tt.run, now)
			if got.Known != tt.profile.Known() {
				t.Fatalf("Known = %v, want %v", got.Known, tt.profile.Known())
			}
			if got.Percent != tt.percent {
				t.Errorf("Percent = %d, want %d", got.Percent, tt.percent)
			}
			if got.Expected != sec(tt.expected) {
				t.Errorf("Expected = %s, want %s", got.Expected, sec(tt.expected))
			}
			switch {
			case tt.remaining < 0 && (got.Remaining != 0 || !got.FinishAt.IsZero()):
				t.Errorf("Remaining, FinishAt = %s, %s; want none", got.Remaining, got.FinishAt)
			case tt.remaining >= 0 && (got.Remaining != sec(tt.remaining) || !got.FinishAt.Equal(now.Add(sec(tt.remaining)))):
				t.Errorf("Remaining, FinishAt = %s, %s; want %s, %s", got.Remaining, got.FinishAt, sec(tt.remaining), now.Add(sec(tt.remaining)))
			}
			if tt.stages != nil && !reflect.DeepEqual(got.Stages, tt.stages) {
				t.Errorf("Stages = %+v, want %+v", got.Stages, tt.stages)
			}
		})
	}
}

// simulated is a run whose phases take the given seconds: prepare, then stages back to
// back with gap seconds between them, then finish (packaging and the deploy).
type simulated struct {
	prepare, gap, pack, deploy float64
	stages                     []st
}

// at returns the run as the database shows it s seconds after it started.
func (sim simulated) at(s float64) Run {
	r := Run{Status: "building", StartedAt: ptr(at(0))}
	cur := sim.prepare
	for i, stg := range sim.stages {
		if i > 0 {
			cur += sim.gap
		}
		if s < cur {
			return r
		}
		if s < cur+stg.secs {
			r.Stages = append(r.Stages, rs(stg.name, StageRunning, cur, -1))
			return r
		}
		r.Stages = append(r.Stages, rs(stg.name, StageSucceeded, cur, cur+stg.secs))
		cur += stg.secs
	}
	if s < cur+sim.pack {
		return r
	}
	cur += sim.pack
	if s < cur+sim.deploy {
		r.Status = "deploying"
		return r
	}
	r.Status, r.FinishedAt = "succeeded", ptr(at(cur+sim.deploy))
	return r
}

func (sim simulated) total() float64 {
	t := sim.prepare + sim.pack + sim.deploy + sim.gap*float64(len(sim.stages)-1)
	for _, s := range sim.stages {
		t += s.secs
	}
	return t
}

// Whatever the speed of each phase, the percentage never goes backwards, stays below 100
// until the run succeeded, and the time left never grows except while a phase runs late.
func TestOfNeverGoesBackwards(t *testing.T) {
	sims := map[string]simulated{
		"as expected":        {prepare: 10, gap: 0.2, pack: 3, deploy: 7, stages: []st{{"install", 20}, {"build", 60}}},
		"everything slower":  {prepare: 25, gap: 0.5, pack: 10, deploy: 30, stages: []st{{"install", 45}, {"build", 130}}},
		"everything faster":  {prepare: 2, gap: 0.1, pack: 1, deploy: 1, stages: []st{{"install", 3}, {"build", 9}}},
		"one stage late":     {prepare: 9, gap: 0.3, pack: 2, deploy: 8, stages: []st{{"install", 18}, {"build", 200}}},
		"fewer stages":       {prepare: 10, gap: 0.2, pack: 3, deploy: 7, stages: []st{{"build", 60}}},
		"slow gaps, no pack": {prepare: 10, gap: 4, pack: 0, deploy: 7, stages: []st{{"install", 20}, {"build", 60}}},
	}
	for name, sim := range sims {
		t.Run(name, func(t *testing.T) {
			last := -1
			total := sim.total()
			for s := 0.0; s <= total+1; s += 0.1 {
				run := sim.at(s)
				e := Of(profile, run, at(s))
				where := fmt.Sprintf("at %.1fs (%s, %d stages)", s, run.Status, len(run.Stages))
				if e.Percent < last {
					t.Fatalf("%s: Percent = %d after %d: went backwards", where, e.Percent, last)
				}
				if run.Status != "succeeded" && e.Percent >= 100 {
					t.Fatalf("%s: Percent = %d before the run succeeded", where, e.Percent)
				}
				if run.Status == "succeeded" && e.Percent != 100 {
					t.Fatalf("%s: Percent = %d after success, want 100", where, e.Percent)
				}
				if e.Remaining < 0 || e.Remaining > profile.Total() {
					t.Fatalf("%s: Remaining = %s, want 0..%s", where, e.Remaining, profile.Total())
				}
				last = e.Percent
			}
			if last != 100 {
				t.Errorf("the run ended at %d%%, want 100", last)
			}
		})
	}
}
