package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/cmd/fabu/internal/client/clienttest"
)

// script has seven lines with status changes between them and fails in the end.
var script = clienttest.Script{
	Events: []clienttest.Event{
		{Status: client.StatusBuilding, Progress: 10},
		{Text: "line 1"}, {Text: "line 2"}, {Text: "warn 3", Stream: "stderr"},
		{Status: client.StatusBuilding, Progress: 40},
		{Text: "line 4"}, {Text: "line 5"},
		{Status: client.StatusDeploying, Progress: 70},
		{Text: "line 6"}, {Text: "line 7"},
	},
	Final: client.StatusFailed,
	Error: "health check of web1 failed",
}

func TestFollowLogs(t *testing.T) {
	all := []string{"1 stdout line 1", "2 stdout line 2", "3 stderr warn 3", "4 stdout line 4", "5 stdout line 5", "6 stdout line 6", "7 stdout line 7"}
	tests := []struct {
		name        string
		after       int64
		dropAfter   int
		overlap     int
		noWebSocket bool
		wantLines   []string
		wantSockets []string // the log socket requests, in order
	}{
		{name: "socket", wantLines: all, wantSockets: []string{"after=0"}},
		{name: "socket from a line", after: 5, wantLines: all[5:], wantSockets: []string{"after=5"}},
		{name: "socket drops and resumes", dropAfter: 3, wantLines: all, wantSockets: []string{"after=0", "after=3", "after=6"}},
		{name: "resumed socket resends lines", dropAfter: 3, overlap: 2, wantLines: all, wantSockets: []string{"after=0", "after=3", "after=4", "after=5", "after=6"}},
		{name: "no socket: polling", noWebSocket: true, wantLines: all, wantSockets: []string{"after=0"}},
		{name: "polling from a line", after: 2, noWebSocket: true, wantLines: all[2:], wantSockets: []string{"after=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := clienttest.Start(t)
			g.DropAfter, g.Overlap, g.NoWebSocket = tt.dropAfter, tt.overlap, tt.noWebSocket
			g.AddProject("shop", script)
			c := client.New(g.URL, g.Token, nil)
			c.PollInterval = time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := c.ProjectByName(ctx, "shop")
			if err != nil {
				t.Fatal(err)
			}
			started, err := c.StartRun(ctx, p.ID, "")
			if err != nil {
				t.Fatal(err)
			}

			var lines []string
			var statuses []client.Run
			run, err := c.FollowLogs(ctx, started.ID, tt.after,
				func(l client.Line) { lines = append(lines, fmt.Sprintf("%d %s %s", l.N, l.Stream, l.Text)) },
				func(r client.Run) { statuses = append(statuses, r) })
			if err != nil {
				t.Fatalf("FollowLogs: %v", err)
			}
			if !slices.Equal(lines, tt.wantLines) {
				t.Errorf("lines =\n%q\nwant\n%q", lines, tt.wantLines)
			}
			if run.ID != started.ID || run.Status != client.StatusFailed || run.Error != script.Error {
				t.Errorf("final run = %+v, want %s failed with %q", run, started.ID, script.Error)
			}
			if len(statuses) == 0 || statuses[len(statuses)-1].Status != client.StatusFailed {
				t.Errorf("statuses = %+v, want the last to be failed", statuses)
			}
			var sockets []string
			for _, r := range g.Requests() {
				var after string
				if _, err := fmt.Sscanf(r, "GET /api/v1/runs/"+started.ID+"/logs/ws?%s", &after); err == nil {
					sockets = append(sockets, after)
				}
			}
			if !slices.Equal(sockets, tt.wantSockets) {
				t.Errorf("socket requests = %v, want %v", sockets, tt.wantSockets)
			}
		})
	}
}

func TestFollowLogsReportsProgress(t *testing.T) {
	g := clienttest.Start(t)
	g.AddProject("shop", script)
	c := client.New(g.URL, g.Token, nil)
	ctx := context.Background()
	p, _ := c.ProjectByName(ctx, "shop")
	started, err := c.StartRun(ctx, p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	if _, err := c.FollowLogs(ctx, started.ID, 0, nil, func(r client.Run) { progress = append(progress, r.Progress) }); err != nil {
		t.Fatal(err)
	}
	// The end message carries no progress, so the last reported value stays.
	if want := []int{10, 40, 70, 70}; !slices.Equal(progress, want) {
		t.Errorf("progress = %v, want %v", progress, want)
	}
}

func TestFollowLogsStopsWithContext(t *testing.T) {
	g := clienttest.Start(t)
	g.NoWebSocket = true
	c := client.New(g.URL, g.Token, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.FollowLogs(ctx, "run-x", 0, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowLogs with a cancelled context: %v, want context.Canceled", err)
	}
}

// A status message with an estimate hands the estimated finish on; one without (no
// history, or the run has ended) hands on none.
func TestFollowLogsReportsEstimatedFinish(t *testing.T) {
	g := clienttest.Start(t)
	g.AddProject("shop", clienttest.Script{Events: []clienttest.Event{
		{Status: client.StatusBuilding, Progress: 10},
		{Status: client.StatusBuilding, Progress: 30, FinishIn: 90 * time.Second},
		{Text: "line 1"},
		{Status: client.StatusDeploying, Progress: 80, FinishIn: 10 * time.Second},
	}, Final: client.StatusSucceeded})
	c := client.New(g.URL, g.Token, nil)
	ctx := context.Background()
	p, _ := c.ProjectByName(ctx, "shop")
	started, err := c.StartRun(ctx, p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var left []time.Duration // -1: no estimate
	from := time.Now()
	if _, err := c.FollowLogs(ctx, started.ID, 0, nil, func(r client.Run) {
		if r.EstimatedFinishAt == nil {
			left = append(left, -1)
			return
		}
		left = append(left, r.EstimatedFinishAt.Sub(from).Round(10*time.Second))
	}); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{-1, 90 * time.Second, 10 * time.Second, -1}; !slices.Equal(left, want) {
		t.Errorf("estimated finishes = %v, want %v", left, want)
	}
}
