package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"fabu.dev/libs/httpx"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
)

// logMessage is one frame of the live log socket.
type logMessage struct {
	Type     string    `json:"type"` // line, status or end
	N        int       `json:"n,omitempty"`
	TS       time.Time `json:"ts,omitzero"`
	Stream   string    `json:"stream,omitempty"`
	Text     string    `json:"text,omitempty"`
	Status   string    `json:"status,omitempty"`
	Progress int       `json:"progress,omitempty"`
	// Status frames of a run under way with history to learn from (estimate.go).
	ETASeconds        *int64     `json:"eta_seconds,omitempty"`
	EstimatedFinishAt *time.Time `json:"estimated_finish_at,omitempty"`
}

// streamLogs serves a run's log live over a WebSocket, from line after+1 on: stored lines
// first, then new ones as they arrive, status changes in between, and "end" once the run
// has finished and every line was sent. A client that reconnects with after=<last line
// seen> misses nothing and sees nothing twice. The socket only observes.
func (s *Service) streamLogs(c *gin.Context) {
	after, err := queryInt(c, "after", 0, 0, 1<<30)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	id := c.Param("id")
	if _, err := s.findRun(c.Request.Context(), id); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	// gorilla/websocket hijacks before writing the handshake, which gin's writer requires.
	conn, err := upgrader.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	defer cancel()
	go func() { // the client sends nothing; reading notices when it goes away
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	if err := s.pump(ctx, conn, id, after); err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Debug("live log ended", "run", id, "err", err)
		}
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "run finished")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second))
}

// upgrader accepts live-log sockets. Browsers send Origin; only same-origin pages (the SPA)
// may open a socket with a session's token, while non-browser clients send no Origin.
var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	CheckOrigin:      sameOrigin,
}

func (s *Service) pump(ctx context.Context, conn *websocket.Conn, id string, after int) error {
	t := time.NewTicker(s.cfg.LogPoll)
	defer t.Stop()
	lastStatus, lastProgress := "", -1
	est := &runEstimator{s: s}
	var estAt time.Time
	var cached RunBody        // the last estimate, reused between estimates
	var lastFinish *time.Time // the estimated finish last sent
	for {
		r, err := s.findRun(ctx, id)
		if err != nil {
			return err
		}
		if !runs.Status(r.Status).Final() {
			// The estimate is refreshed every second or when the status changes, and its
			// percentage never goes backwards on one socket.
			if r.Status != lastStatus || time.Since(estAt) >= time.Second {
				if err := est.apply(ctx, &r); err != nil {
					return err
				}
				if r.Status == lastStatus {
					r.Progress = max(r.Progress, lastProgress)
				}
				estAt, cached = time.Now(), r
			} else {
				r.Progress, r.Estimate = cached.Progress, cached.Estimate
			}
		}
		for {
			lines, err := runlog.Read(ctx, s.db.DB, id, after, 500)
			if err != nil {
				return err
			}
			for _, l := range lines {
				m := logMessage{Type: "line", N: l.Line, TS: l.TS, Stream: l.Stream, Text: l.Text}
				if err := write(ctx, conn, m); err != nil {
					return err
				}
				after = l.Line
			}
			if len(lines) < 500 {
				break
			}
		}
		if r.Status != lastStatus || r.Progress != lastProgress || !sameTime(r.EstimatedFinishAt, lastFinish) {
			lastStatus, lastProgress, lastFinish = r.Status, r.Progress, r.EstimatedFinishAt
			m := logMessage{Type: "status", Status: r.Status, Progress: r.Progress, ETASeconds: r.ETASeconds, EstimatedFinishAt: r.EstimatedFinishAt}
			if err := write(ctx, conn, m); err != nil {
				return err
			}
		}
		if runs.Status(r.Status).Final() { // status read before lines: all lines were sent
			return write(ctx, conn, logMessage{Type: "end", Status: r.Status})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func write(_ context.Context, conn *websocket.Conn, m logMessage) error {
	if err := conn.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	return conn.WriteJSON(m)
}

// sameOrigin accepts requests without an Origin header (CLI clients) and those whose Origin
// names the host they were sent to.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
