package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/cmd/fabu/internal/client/clienttest"
)

func TestDeploy(t *testing.T) {
	events := []clienttest.Event{
		{Status: client.StatusBuilding, Progress: 5},
		{Text: "cloning shop"}, {Text: "npm warn deprecated", Stream: "stderr"},
		{Status: client.StatusDeploying, Progress: 60},
		{Text: "uploading to web1"}, {Text: "switching current"}, {Text: "health check"},
	}
	tests := []struct {
		name       string
		script     clienttest.Script
		args       []string
		dropAfter  int
		wantStdout []string // after the "Run … started" line
		wantStderr string
		wantExit   int // 0 for success
	}{
		{
			name:       "follow a failed run",
			script:     clienttest.Script{Events: events, Final: client.StatusFailed, Error: "health check of web1 failed: HTTP 502"},
			args:       []string{"--follow"},
			wantStdout: []string{"cloning shop", "uploading to web1", "switching current", "health check"},
			wantStderr: "npm warn deprecated\nRun run-2 failed: health check of web1 failed: HTTP 502\n",
			wantExit:   1,
		},
		{
			name:       "follow a cancelled run across dropped sockets",
			script:     clienttest.Script{Events: events, Final: client.StatusCancelled, Error: "cancelled by alice"},
			args:       []string{"--follow", "--ref", "v2"},
			dropAfter:  1,
			wantStdout: []string{"cloning shop", "uploading to web1", "switching current", "health check"},
			wantStderr: "npm warn deprecated\nRun run-2 cancelled: cancelled by alice\n",
			wantExit:   1,
		},
		{
			name:       "follow a succeeded run",
			script:     clienttest.Script{Events: events, Final: client.StatusSucceeded},
			args:       []string{"--follow"},
			wantStdout: []string{"cloning shop", "uploading to web1", "switching current", "health check"},
			wantStderr: "npm warn deprecated\nRun run-2 succeeded\n",
		},
		{
			name:   "without follow",
			script: clienttest.Script{Events: events, Final: client.StatusFailed, Error: "not shown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			g := clienttest.Start(t)
			g.DropAfter = tt.dropAfter
			g.AddProject("shop", tt.script)
			r := execute(t, nil, append([]string{"deploy", "shop", "--server", g.URL, "--token", g.Token}, tt.args...)...)
			noToken(t, g.Token, r)
			var exit ExitError
			switch {
			case tt.wantExit == 0 && r.err != nil:
				t.Fatalf("deploy: %v", r.err)
			case tt.wantExit != 0 && (!errors.As(r.err, &exit) || exit.Code != tt.wantExit):
				t.Fatalf("deploy error = %#v, want ExitError{Code: %d}", r.err, tt.wantExit)
			}
			wantOut := "Run run-2 started: " + g.URL + "/runs/run-2\n"
			for _, l := range tt.wantStdout {
				wantOut += l + "\n"
			}
			if r.stdout != wantOut {
				t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, wantOut)
			}
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q (no progress bar off a terminal)", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestDeployUnknownProject(t *testing.T) {
	isolate(t)
	g := clienttest.Start(t)
	r := execute(t, nil, "deploy", "nope", "--server", g.URL, "--token", g.Token)
	if r.err == nil || !strings.Contains(r.err.Error(), `no project named "nope"`) {
		t.Errorf("error = %v, want one naming the project", r.err)
	}
}

func TestDeployWithWrongToken(t *testing.T) {
	isolate(t)
	g := clienttest.Start(t)
	r := execute(t, nil, "deploy", "shop", "--server", g.URL, "--token", "expired-token-77")
	noToken(t, "expired-token-77", r)
	if r.err == nil || !strings.Contains(r.err.Error(), "missing or invalid token") {
		t.Errorf("error = %v, want the server's message", r.err)
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		progress int
		want     string
	}{
		{0, "[------------------------------]   0% building"},
		{50, "[###############---------------]  50% building"},
		{100, "[##############################] 100% building"},
		{140, "[##############################] 100% building"},
		{-3, "[------------------------------]   0% building"},
	}
	for _, tt := range tests {
		if got := renderBar(tt.progress, "building"); got != tt.want {
			t.Errorf("renderBar(%d) = %q, want %q", tt.progress, got, tt.want)
		}
	}

	var b strings.Builder
	bar := &progressBar{w: &b, on: true}
	bar.update("building", 10, nil)
	bar.clear()
	bar.draw()
	bar.clear()
	bar.clear() // nothing shown: nothing to erase
	want := "\r" + renderBar(10, "building") + "\x1b[K" + "\r\x1b[K" + "\r" + renderBar(10, "building") + "\x1b[K" + "\r\x1b[K"
	if b.String() != want {
		t.Errorf("bar wrote %q, want %q", b.String(), want)
	}
}

func TestProgressBarETA(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	tests := []struct {
		name     string
		finishAt *time.Time
		want     string
	}{
		{"no estimate", nil, ""},
		{"minutes left", at(80 * time.Second), " · ETA 1m20s"},
		{"rounded to the second", at(4400 * time.Millisecond), " · ETA 4s"},
		{"due", at(-3 * time.Second), " · ETA any moment"},
	}
	for _, tt := range tests {
		if got := renderETA(tt.finishAt, now); got != tt.want {
			t.Errorf("%s: renderETA = %q, want %q", tt.name, got, tt.want)
		}
	}

	// The bar shows the time left beside the percentage and counts it down as time passes.
	var b strings.Builder
	clock := now
	bar := &progressBar{w: &b, on: true, now: func() time.Time { return clock }}
	bar.update("building", 40, at(90*time.Second))
	clock = now.Add(10 * time.Second)
	bar.draw()
	want := "\r" + renderBar(40, "building") + " · ETA 1m30s\x1b[K" + "\r" + renderBar(40, "building") + " · ETA 1m20s\x1b[K"
	if b.String() != want {
		t.Errorf("bar wrote %q, want %q", b.String(), want)
	}
}
