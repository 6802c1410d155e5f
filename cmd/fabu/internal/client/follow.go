package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

const (
	// wsIdleTimeout bounds how long a socket may stay silent before it is presumed dead
	// (a peer that vanished without closing TCP) and replaced; reconnecting is harmless.
	wsIdleTimeout = 2 * time.Minute
	// maxDrops is how many sockets in a row may end without delivering anything before
	// FollowLogs gives up on the WebSocket and polls instead.
	maxDrops = 5
	// maxPollFailures is how many transient poll failures in a row FollowLogs tolerates.
	maxPollFailures = 10
	wsReadLimit     = 4 << 20
)

var errBadMessage = errors.New("bad message")

// FollowLogs streams the run's log lines numbered above after to onLine, in order and each
// once, and status changes to onStatus, until the run ends; it then returns the run's final
// state. It reads the live WebSocket (GET /api/v1/runs/:id/logs/ws?after=N), reconnects
// after the last line seen when the socket drops, and polls Logs when no socket can be
// opened. Either callback may be nil.
func (c *Client) FollowLogs(ctx context.Context, runID string, after int64, onLine func(Line), onStatus func(Run)) (Run, error) {
	f := &follower{c: c, runID: runID, last: after, onLine: onLine, onStatus: onStatus}
	return f.follow(ctx)
}

// follower is the state of one FollowLogs call: the last line delivered and the last
// status seen.
type follower struct {
	c        *Client
	runID    string
	last     int64
	status   string
	progress int
	finishAt *time.Time // the estimated finish last heard of
	onLine   func(Line)
	onStatus func(Run)
}

// wsMessage is one message of the live-log socket: a line, a status change or the end.
type wsMessage struct {
	Type string `json:"type"` // "line", "status", "end"
	Line
	Status            string     `json:"status"`
	Progress          *int       `json:"progress"`
	EstimatedFinishAt *time.Time `json:"estimated_finish_at"`
}

func (f *follower) follow(ctx context.Context) (Run, error) {
	drops := 0
	for {
		conn, err := f.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Run{}, ctx.Err()
			}
			return f.poll(ctx)
		}
		got, ended, err := f.read(ctx, conn)
		if ended {
			return f.final(ctx)
		}
		if ctx.Err() != nil {
			return Run{}, ctx.Err()
		}
		if errors.Is(err, errBadMessage) {
			return Run{}, err // the server speaks another protocol; reconnecting won't help
		}
		if err != nil && !got {
			drops++
		} else {
			drops = 0
		}
		if drops >= maxDrops {
			return f.poll(ctx)
		}
		if err := sleep(ctx, backoff(drops)); err != nil {
			return Run{}, err
		}
	}
}

func (f *follower) dial(ctx context.Context) (*websocket.Conn, error) {
	u := f.c.server + "/api/v1/runs/" + url.PathEscape(f.runID) + "/logs/ws?after=" + strconv.FormatInt(f.last, 10)
	h := http.Header{}
	f.c.authorize(h)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: f.c.hc, HTTPHeader: h})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(wsReadLimit)
	return conn, nil
}

// read consumes one socket until it ends. got says whether any message arrived; ended
// whether the run's end was announced.
func (f *follower) read(ctx context.Context, conn *websocket.Conn) (got, ended bool, err error) {
	defer conn.CloseNow()
	for {
		rctx, cancel := context.WithTimeout(ctx, wsIdleTimeout)
		_, data, err := conn.Read(rctx)
		cancel()
		if err != nil {
			return got, false, err
		}
		got = true
		var m wsMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return got, false, fmt.Errorf("live log of run %s: %w: %w", f.runID, errBadMessage, err)
		}
		switch m.Type {
		case "line":
			f.line(m.Line)
		case "status":
			p := f.progress
			if m.Progress != nil {
				p = *m.Progress
			}
			f.setStatus(m.Status, p, m.EstimatedFinishAt)
		case "end":
			f.setStatus(m.Status, f.progress, nil)
			_ = conn.Close(websocket.StatusNormalClosure, "")
			return true, true, nil
		}
	}
}

// poll follows the log through GET /logs when no socket is to be had.
func (f *follower) poll(ctx context.Context) (Run, error) {
	failures := 0
	for {
		page, err := f.c.Logs(ctx, f.runID, f.last)
		if err != nil {
			if ctx.Err() != nil {
				return Run{}, ctx.Err()
			}
			if !transient(err) || failures >= maxPollFailures {
				return Run{}, fmt.Errorf("follow log of run %s: %w", f.runID, err)
			}
			failures++
			if err := sleep(ctx, backoff(failures)); err != nil {
				return Run{}, err
			}
			continue
		}
		failures = 0
		for _, l := range page.Lines {
			f.line(l)
		}
		if page.Status != "" && page.Status != f.status {
			f.setStatus(page.Status, f.progress, f.finishAt)
		}
		if len(page.Lines) > 0 {
			continue // more may be waiting; a finished run ends with an empty page
		}
		if page.Done {
			return f.final(ctx)
		}
		// The log page carries no progress; the run does.
		if run, err := f.c.GetRun(ctx, f.runID); err == nil && (run.Status != f.status || run.Progress != f.progress ||
			!sameTime(run.EstimatedFinishAt, f.finishAt)) {
			f.setStatus(run.Status, run.Progress, run.EstimatedFinishAt)
		}
		if err := sleep(ctx, f.c.PollInterval); err != nil {
			return Run{}, err
		}
	}
}

// line delivers l unless it was delivered before (a reconnect may resend it).
func (f *follower) line(l Line) {
	if l.N <= f.last {
		return
	}
	f.last = l.N
	if f.onLine != nil {
		f.onLine(l)
	}
}

func (f *follower) setStatus(status string, progress int, finishAt *time.Time) {
	f.status, f.progress, f.finishAt = status, progress, finishAt
	if f.onStatus != nil {
		f.onStatus(Run{ID: f.runID, Status: status, Progress: progress, EstimatedFinishAt: finishAt})
	}
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// final returns the finished run as the API reports it, with its error message; if that
// cannot be read, what the log stream said about it.
func (f *follower) final(ctx context.Context) (Run, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var run Run
		if run, err = f.c.GetRun(ctx, f.runID); err == nil {
			return run, nil
		}
		if !transient(err) || sleep(ctx, backoff(attempt+1)) != nil {
			break
		}
	}
	return Run{ID: f.runID, Status: f.status, Progress: f.progress},
		fmt.Errorf("run %s ended %s; its final state could not be read: %w", f.runID, f.status, err)
}

// backoff grows from 250ms to at most 5s with the number of failures in a row.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n, 5)
	return min(d, 5*time.Second) - 250*time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
