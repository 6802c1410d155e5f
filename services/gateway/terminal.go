package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/sshx"
)

// The web terminal: GET /api/v1/servers/:id/terminal upgrades to a WebSocket that carries
// an interactive login shell on the server, over SSH with the deployer's key and the
// server's pinned host key. Who may open one is the server group's may_terminal rule
// (MayTerminal); every attempt is audited when it ends (server.terminal, with how long it
// lasted and how it ended), and an opened session also when it starts
// (server.terminal.open), so a session under way is visible.
//
// Frames from the browser: binary frames are keys, as typed; text frames are JSON
// {"type":"input","data":"…"} or {"type":"resize","rows":R,"cols":C}. Frames to the
// browser: binary frames are what the terminal shows; text frames are JSON
// {"type":"exit","status":N} when the shell ended or {"type":"error","message":"…"}, after
// which the socket closes. Closing the socket hangs the shell up (SIGHUP), as closing a
// terminal window does.

// terminalRoute is the route of the web terminal.
const terminalRoute = "/api/v1/servers/:id/terminal"

// TerminalConfig configures the web terminal.
type TerminalConfig struct {
	// SSHKeyPath is the deployer's private key (the one the servers authorize). Empty: no
	// web terminal. The key is read when a session opens, so a deployer that starts later
	// is picked up.
	SSHKeyPath string
	// TerminalIdle hangs up a session that has had no input for this long; default 30m.
	TerminalIdle time.Duration
	// TerminalDial bounds connecting to the server; default sshx.DefaultDialTimeout.
	TerminalDial time.Duration
}

// maxTerminalFrame bounds one frame from the browser: a paste, not a file transfer.
const maxTerminalFrame = 64 << 10

// terminalFrame is a text frame of the terminal socket, in either direction.
type terminalFrame struct {
	Type    string `json:"type"` // input, resize (from the browser); exit, error (to it)
	Data    string `json:"data,omitempty"`
	Rows    int    `json:"rows,omitempty"`
	Cols    int    `json:"cols,omitempty"`
	Status  *int   `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// terminalSession is what the audit entry of a session tells.
type terminalSession struct {
	server, host string
	opened       time.Time
	in, out      atomic.Int64 // bytes typed, bytes shown
	ended        string       // exit, hangup, idle, error; set by the session's own goroutine
	status       *int
	idled        atomic.Bool // the idle timer hung up
}

func (ts *terminalSession) detail() map[string]any {
	d := map[string]any{"server": ts.server, "host": ts.host, "ended": ts.ended,
		"bytes_in": ts.in.Load(), "bytes_out": ts.out.Load()}
	if !ts.opened.IsZero() {
		d["opened_at"] = ts.opened
		d["seconds"] = int64(time.Since(ts.opened).Seconds())
	}
	if ts.status != nil {
		d["exit_status"] = *ts.status
	}
	return d
}

// auditDetailKey holds extra detail a handler gives the audit entry of its request.
const auditDetailKey = "fabu.audit.detail"

func (s *Service) terminal(c *gin.Context) {
	pty, err := terminalSize(c)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m, err := s.findServer(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if s.cfg.SSHKeyPath == "" {
		httpx.Fail(c, s.log, apperr.Unavailable("the web terminal is not configured on this gateway (no SSH key path)"))
		return
	}
	signer, err := sshx.LoadKey(s.cfg.SSHKeyPath)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if !websocket.IsWebSocketUpgrade(c.Request) {
		httpx.Fail(c, s.log, apperr.Invalid("the terminal is a WebSocket: send an upgrade request"))
		return
	}
	conn, err := upgrader.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer conn.Close()
	conn.SetReadLimit(maxTerminalFrame)

	ts := &terminalSession{server: m.Name, host: m.Host, ended: "error"}
	c.Set(auditDetailKey, ts) // read by recordAudit when the session is over
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	defer cancel()
	target := sshx.Target{Name: m.Name, Host: m.Host, Port: m.Port, User: m.SSHUser, HostKey: m.HostKey}
	client, err := sshx.Dial(ctx, target, signer, s.cfg.TerminalDial)
	if err != nil {
		terminalFail(conn, err)
		return
	}
	defer client.Close()
	sh, err := client.Shell(ctx, pty)
	if err != nil {
		terminalFail(conn, err)
		return
	}
	defer sh.Close()
	ts.opened = time.Now()
	s.recordTerminalOpen(c, ts)
	s.pumpTerminal(ctx, conn, sh, ts)
}

// terminalSize reads the optional rows, cols and term query parameters.
func terminalSize(c *gin.Context) (sshx.PTY, error) {
	var p sshx.PTY
	for _, f := range []struct {
		name string
		dst  *int
	}{{"rows", &p.Rows}, {"cols", &p.Cols}} {
		if v := c.Query(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, apperr.Invalid("%s %q is not a number", f.name, v)
			}
			*f.dst = n
		}
	}
	p.Term = c.Query("term")
	return p.Normalize()
}

// pumpTerminal copies keys to the shell and the screen to the socket until the shell ends,
// the socket closes or the session is idle too long. Only this goroutine's output loop
// writes to conn until it ends, then the closing frames are written here.
func (s *Service) pumpTerminal(ctx context.Context, conn *websocket.Conn, sh *sshx.Shell, ts *terminalSession) {
	idle := s.cfg.TerminalIdle
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	idleTimer := time.AfterFunc(idle, func() { ts.idled.Store(true); _ = sh.Close() })
	defer idleTimer.Stop()

	socketGone := make(chan struct{})
	go func() { // the browser's frames
		defer close(socketGone)
		for {
			kind, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			idleTimer.Reset(idle)
			if err := terminalInput(sh, kind, data, ts); err != nil {
				s.log.Debug("terminal: frame refused", "server", ts.server, "err", err)
			}
		}
	}()

	shown := make(chan struct{})
	go func() { // the screen
		defer close(shown)
		buf := make([]byte, 32<<10)
		for {
			n, err := sh.Read(buf)
			if n > 0 {
				ts.out.Add(int64(n))
				_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
				if werr := conn.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					_ = sh.Close()
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	select {
	case <-sh.Done():
	case <-socketGone:
		ts.ended = "hangup"
		_ = sh.Close()
	case <-ctx.Done():
		_ = sh.Close()
	}
	werr := sh.Wait()
	<-shown
	if ts.idled.Load() {
		ts.ended = "idle"
	}
	var ee *sshx.ExitError
	switch {
	case ts.ended == "idle":
		terminalClose(conn, terminalFrame{Type: "error", Message: "hung up after " + idle.String() + " without input"})
	case ts.ended == "hangup":
	case werr == nil:
		ts.ended, ts.status = "exit", new(int)
		terminalClose(conn, terminalFrame{Type: "exit", Status: ts.status})
	case errors.As(werr, &ee) && ee.Signal == "":
		ts.ended, ts.status = "exit", &ee.Status
		terminalClose(conn, terminalFrame{Type: "exit", Status: ts.status})
	default:
		terminalClose(conn, terminalFrame{Type: "error", Message: werr.Error()})
	}
}

// terminalInput applies one frame from the browser.
func terminalInput(sh *sshx.Shell, kind int, data []byte, ts *terminalSession) error {
	if kind == websocket.BinaryMessage {
		ts.in.Add(int64(len(data)))
		_, err := sh.Write(data)
		return err
	}
	var f terminalFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return apperr.Invalid("terminal frame: %v", err)
	}
	switch f.Type {
	case "input":
		ts.in.Add(int64(len(f.Data)))
		_, err := io.WriteString(sh, f.Data)
		return err
	case "resize":
		return sh.Resize(f.Rows, f.Cols)
	default:
		return apperr.Invalid("terminal frame type %q: want input or resize", f.Type)
	}
}

// terminalFail tells the browser why no shell opened, then closes the socket.
func terminalFail(conn *websocket.Conn, err error) {
	terminalClose(conn, terminalFrame{Type: "error", Message: err.Error()})
}

func terminalClose(conn *websocket.Conn, f terminalFrame) {
	deadline := time.Now().Add(5 * time.Second)
	_ = conn.SetWriteDeadline(deadline)
	if b, err := json.Marshal(f); err == nil {
		_ = conn.WriteMessage(websocket.TextMessage, b)
	}
	code := websocket.CloseNormalClosure
	if f.Type == "error" {
		code = websocket.CloseInternalServerErr
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, f.Type), deadline)
}

// recordTerminalOpen records that a session has opened; the entry of the request itself
// follows when it ends (recordAudit).
func (s *Service) recordTerminalOpen(c *gin.Context, ts *terminalSession) {
	u := currentUser(c)
	e := audit.Entry{Actor: u.Username, ActorID: u.ID, Action: "server.terminal.open", Target: "server",
		TargetID: c.Param("id"), Outcome: audit.OK, IP: c.RemoteIP(), UserAgent: c.Request.UserAgent(),
		Detail: map[string]any{"server": ts.server, "host": ts.host}}
	if err := audit.Record(s.db.WithContext(context.WithoutCancel(c.Request.Context())), e); err != nil {
		s.log.Error("audit log: entry not recorded", "action", e.Action, "err", err)
	}
}

// terminalAuditDetail adds a terminal session's account to the detail of its request's
// entry, and returns the outcome when the session failed after the upgrade (whose status
// says 200 whatever happened next); "" leaves the outcome to the status.
func terminalAuditDetail(c *gin.Context, detail map[string]any) string {
	v, ok := c.Get(auditDetailKey)
	if !ok {
		return ""
	}
	ts, ok := v.(*terminalSession)
	if !ok {
		return ""
	}
	detail["session"] = ts.detail()
	if ts.ended == "error" {
		return audit.Failed
	}
	return ""
}

// mayOpenTerminal is the rule of the terminal route.
func (s *Service) mayOpenTerminal(ctx context.Context, cl caller, serverID string) error {
	ok, err := s.MayTerminal(ctx, cl.ID, serverID)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.Forbidden("no server group rule lets you open a terminal on server %s", serverID)
	}
	return nil
}
