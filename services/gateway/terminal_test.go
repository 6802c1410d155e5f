package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/sshx"
	"fabu.dev/libs/sshx/sshtest"
	"fabu.dev/libs/store"
)

// terminalEnv is a gateway whose web terminal uses a key that a real sshd authorizes.
type terminalEnv struct {
	*env
	sshd     *sshtest.Server
	serverID string // the sshd, as a server of fabu
}

func newTerminalEnv(t *testing.T, configure func(*Config)) *terminalEnv {
	t.Helper()
	sshd := sshtest.Start(t)
	keyPath := filepath.Join(t.TempDir(), "ssh", "id_ed25519")
	_, line, err := sshx.LoadOrCreateKey(keyPath) // as the deployer creates it
	if err != nil {
		t.Fatal(err)
	}
	sshd.Authorize(t, line)
	e := newEnvWith(t, store.SQLite, func(c *Config) {
		c.SSHKeyPath = keyPath
		configure(c)
	})
	te := &terminalEnv{env: e, sshd: sshd}
	te.serverID = te.addServer("shell-1", sshd.HostKeyLine)
	return te
}

func (e *terminalEnv) addServer(name, hostKey string) string {
	e.t.Helper()
	var out struct{ ID string }
	body := map[string]any{"name": name, "host": "127.0.0.1", "port": e.sshd.Port, "user": "root", "host_key": hostKey}
	if s := e.call("POST", "/api/v1/servers", body, &out); s != http.StatusCreated {
		e.t.Fatalf("create server %s: %d", name, s)
	}
	return out.ID
}

// addUser adds a user with the system role "user" and returns its bearer token.
func (e *terminalEnv) addUser(id, name string) string {
	e.t.Helper()
	tok := "token-of-" + name + "-0123456789"
	sum := sha256.Sum256([]byte(tok))
	now := time.Now().UTC()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?, ?, 'x', 'user', ?)`, []any{id, name, now}},
		{`INSERT INTO auth_tokens (id, user_id, token_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
			[]any{"t-" + id, id, hex.EncodeToString(sum[:]), now.Add(time.Hour), now}},
	} {
		if err := e.db.Exec(q.sql, q.args...).Error; err != nil {
			e.t.Fatal(err)
		}
	}
	return tok
}

func (e *terminalEnv) url(serverID, query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/v1/servers/" + serverID + "/terminal" + query
}

// term is a test's end of a terminal socket.
type term struct {
	t    *testing.T
	conn *websocket.Conn

	mu     sync.Mutex
	screen strings.Builder
	frames []terminalFrame
	closed bool
}

func (e *terminalEnv) open(serverID, query, bearer string) *term {
	e.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + bearer}}
	conn, resp, err := websocket.DefaultDialer.Dial(e.url(serverID, query), h)
	status := closeResponse(resp)
	if err != nil {
		e.t.Fatalf("dial terminal: %v (status %d)", err, status)
	}
	tm := &term{t: e.t, conn: conn}
	e.t.Cleanup(func() { _ = conn.Close() })
	go func() {
		for {
			kind, data, err := conn.ReadMessage()
			tm.mu.Lock()
			if err != nil {
				tm.closed = true
				tm.mu.Unlock()
				return
			}
			if kind == websocket.BinaryMessage {
				tm.screen.Write(data)
			} else {
				var f terminalFrame
				if json.Unmarshal(data, &f) == nil {
					tm.frames = append(tm.frames, f)
				}
			}
			tm.mu.Unlock()
		}
	}()
	return tm
}

func (tm *term) send(kind int, data string) {
	tm.t.Helper()
	if err := tm.conn.WriteMessage(kind, []byte(data)); err != nil {
		tm.t.Fatalf("send: %v", err)
	}
}

func (tm *term) waitShown(want string) {
	tm.t.Helper()
	tm.await(fmt.Sprintf("the terminal to show %q", want), func() bool { return strings.Contains(tm.screen.String(), want) })
}

// waitFrame waits for a text frame of type typ and returns it.
func (tm *term) waitFrame(typ string) terminalFrame {
	tm.t.Helper()
	var got terminalFrame
	tm.await("a "+typ+" frame", func() bool {
		for _, f := range tm.frames {
			if f.Type == typ {
				got = f
				return true
			}
		}
		return false
	})
	return got
}

func (tm *term) waitClosed() {
	tm.t.Helper()
	tm.await("the socket to close", func() bool { return tm.closed })
}

func (tm *term) await(what string, cond func() bool) {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tm.mu.Lock()
		ok := cond()
		shown, frames := tm.screen.String(), tm.frames
		tm.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %s; screen %q, frames %+v", what, shown, frames)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitEntry polls the audit log until an entry of action exists.
func (e *terminalEnv) awaitEntry(action string) audit.Entry {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got := e.auditEntries(audit.Filter{Action: action}); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s audit entry within 15s", action)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTerminalSession(t *testing.T) {
	e := newTerminalEnv(t, func(*Config) {})
	tm := e.open(e.serverID, "?rows=30&cols=100", token)

	// The arithmetic is done by the host's shell: the marker only appears if it ran there.
	tm.send(websocket.BinaryMessage, "tty >/dev/null && echo \"TTY-$((6*7))\"; stty size\n")
	tm.waitShown("TTY-42")
	tm.waitShown("30 100")
	if open := e.awaitEntry("server.terminal.open"); open.Actor != "alice" || open.TargetID != e.serverID || open.Outcome != audit.OK || open.IP == "" {
		t.Errorf("open entry = %+v, want alice on %s, ok, with an address", open, e.serverID)
	}

	tm.send(websocket.TextMessage, `{"type":"resize","rows":50,"cols":132}`)
	tm.send(websocket.TextMessage, `{"type":"input","data":"echo \"SIZE-$(stty size | tr ' ' x)\"\n"}`)
	tm.waitShown("SIZE-50x132")

	tm.send(websocket.BinaryMessage, "exit 7\n")
	if f := tm.waitFrame("exit"); f.Status == nil || *f.Status != 7 {
		t.Errorf("exit frame = %+v, want status 7", f)
	}
	tm.waitClosed()

	end := e.awaitEntry("server.terminal")
	session, _ := end.Detail["session"].(map[string]any)
	if end.Actor != "alice" || end.Outcome != audit.OK || session["ended"] != "exit" || session["exit_status"] != float64(7) {
		t.Fatalf("end entry = %+v, want alice, ok, ended by exit 7", end)
	}
	if in, _ := session["bytes_in"].(float64); in < 10 {
		t.Errorf("session bytes_in = %v, want what was typed", session["bytes_in"])
	}
	if session["server"] != "shell-1" || session["seconds"] == nil {
		t.Errorf("session detail = %v, want the server's name and the duration", session)
	}
}

// TestTerminalHangUp: closing the socket hangs the shell up, and what ran in it dies.
func TestTerminalHangUp(t *testing.T) {
	e := newTerminalEnv(t, func(*Config) {})
	tm := e.open(e.serverID, "", token)
	pattern := fmt.Sprintf("sleep 5%03d.%d", mrand.IntN(1000), mrand.IntN(1_000_000))
	tm.send(websocket.BinaryMessage, "echo started; "+pattern+"\n")
	tm.waitShown("started")
	awaitProcess(t, pattern, true)
	_ = tm.conn.Close()
	awaitProcess(t, pattern, false)
	end := e.awaitEntry("server.terminal")
	if session, _ := end.Detail["session"].(map[string]any); session["ended"] != "hangup" {
		t.Errorf("end entry detail = %v, want ended by hangup", end.Detail)
	}
}

func TestTerminalIdle(t *testing.T) {
	e := newTerminalEnv(t, func(c *Config) { c.TerminalIdle = 300 * time.Millisecond })
	tm := e.open(e.serverID, "", token)
	if f := tm.waitFrame("error"); !strings.Contains(f.Message, "without input") {
		t.Errorf("idle frame = %+v, want a message about no input", f)
	}
	tm.waitClosed()
	end := e.awaitEntry("server.terminal")
	if session, _ := end.Detail["session"].(map[string]any); session["ended"] != "idle" {
		t.Errorf("end entry detail = %v, want ended by idle", end.Detail)
	}
}

// TestTerminalHostKeyMismatch: a server whose key is not the pinned one gets no shell; the
// browser is told why and the attempt is audited as failed.
func TestTerminalHostKeyMismatch(t *testing.T) {
	e := newTerminalEnv(t, func(*Config) {})
	wrong := e.addServer("impostor", fmt.Sprintf("[127.0.0.1]:%d %s", e.sshd.Port, strings.SplitN(hostKey, " ", 2)[1]))
	tm := e.open(wrong, "", token)
	if f := tm.waitFrame("error"); !strings.Contains(f.Message, "host key mismatch") {
		t.Errorf("error frame = %+v, want a host key mismatch", f)
	}
	tm.waitClosed()
	end := e.awaitEntry("server.terminal")
	if end.Outcome != audit.Failed || end.TargetID != wrong {
		t.Errorf("end entry = %+v, want failed on %s", end, wrong)
	}
	if got := e.auditEntries(audit.Filter{Action: "server.terminal.open"}); len(got) != 0 {
		t.Errorf("open entries = %+v, want none: no shell opened", got)
	}
}

// TestTerminalRules: a user gets a terminal only on a server whose group has a rule with
// may_terminal for them or one of their user groups; refusals are audited.
func TestTerminalRules(t *testing.T) {
	e := newTerminalEnv(t, func(*Config) {})
	bob := e.addUser("u2", "bob")
	get := func(bearer string) int {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/servers/"+e.serverID+"/terminal", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(bob); s != http.StatusForbidden {
		t.Fatalf("bob, server in no group: %d, want 403", s)
	}
	refused := e.awaitEntry("server.terminal")
	if refused.Actor != "bob" || refused.Outcome != audit.Refused {
		t.Errorf("refusal entry = %+v, want bob refused", refused)
	}

	for _, q := range []string{
		`INSERT INTO server_groups (id, name) VALUES ('sg1', 'prod')`,
		`UPDATE servers SET server_group_id = 'sg1' WHERE id = '` + e.serverID + `'`,
		`INSERT INTO server_group_rules (id, server_group_id, user_id, may_deploy, may_terminal) VALUES ('r1', 'sg1', 'u2', TRUE, FALSE)`,
	} {
		if err := e.db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	if s := get(bob); s != http.StatusForbidden {
		t.Fatalf("bob, deploy rule only: %d, want 403", s)
	}
	if err := e.db.Exec(`UPDATE server_group_rules SET may_terminal = TRUE WHERE id = 'r1'`).Error; err != nil {
		t.Fatal(err)
	}
	if s := get(bob); s != http.StatusBadRequest {
		t.Fatalf("bob with a terminal rule, no upgrade: %d, want 400", s)
	}
	tm := e.open(e.serverID, "", bob)
	tm.send(websocket.BinaryMessage, "echo \"BOB-$((40+2))\"; exit\n")
	tm.waitShown("BOB-42")
	if f := tm.waitFrame("exit"); f.Status == nil || *f.Status != 0 {
		t.Errorf("exit frame = %+v, want status 0", f)
	}
}

func TestTerminalBadInput(t *testing.T) {
	e := newTerminalEnv(t, func(*Config) {})
	cases := []struct {
		name, server, query string
		upgrade             bool
		want                int
	}{
		{"rows not a number", e.serverID, "?rows=abc", true, http.StatusBadRequest},
		{"rows too many", e.serverID, "?rows=5000&cols=80", true, http.StatusBadRequest},
		{"negative cols", e.serverID, "?cols=-1", true, http.StatusBadRequest},
		{"a hostile terminal type", e.serverID, "?term=%24(id)", true, http.StatusBadRequest},
		{"a newline in the terminal type", e.serverID, "?term=xterm%0AFOO%3Dbar", true, http.StatusBadRequest},
		{"no upgrade", e.serverID, "", false, http.StatusBadRequest},
		{"unknown server", "nope", "", true, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + token}}
			var status int
			if tc.upgrade {
				conn, resp, err := websocket.DefaultDialer.Dial(e.url(tc.server, tc.query), h)
				status = closeResponse(resp)
				if err == nil {
					conn.Close()
					t.Fatalf("the socket opened, want %d", tc.want)
				}
			} else {
				req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/servers/"+tc.server+"/terminal"+tc.query, nil)
				req.Header = h
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			}
			if status != tc.want {
				t.Errorf("status %d, want %d", status, tc.want)
			}
		})
	}

	// A socket from another site's page is refused: the session token must not open a
	// shell for whatever page the browser is on.
	h := http.Header{"Authorization": {"Bearer " + token}, "Origin": {"https://evil.example"}}
	conn, resp, err := websocket.DefaultDialer.Dial(e.url(e.serverID, ""), h)
	if status := closeResponse(resp); err == nil || status != http.StatusForbidden {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("a cross-origin socket: status %d, err %v; want refused with 403", status, err)
	}
}

// TestTerminalWithoutKey: a gateway without the deployer's key says so instead of failing
// at the SSH handshake.
func TestTerminalWithoutKey(t *testing.T) {
	e := newEnvWith(t, store.SQLite, func(c *Config) { c.SSHKeyPath = filepath.Join(t.TempDir(), "missing") })
	var out struct{ ID string }
	if s := e.call("POST", "/api/v1/servers", server("web-1"), &out); s != http.StatusCreated {
		t.Fatalf("create server: %d", s)
	}
	var body struct{ Message string }
	if s := e.call("GET", "/api/v1/servers/"+out.ID+"/terminal", nil, &body); s != http.StatusServiceUnavailable || !strings.Contains(body.Message, "SSH key") {
		t.Errorf("terminal without a key: %d %q, want 503 naming the SSH key", s, body.Message)
	}
}

// closeResponse closes the body of a handshake's response and returns its status (0: none).
func closeResponse(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	return resp.StatusCode
}

func awaitProcess(t *testing.T, pattern string, want bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for (exec.Command("pgrep", "-f", pattern).Run() == nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s running = %v after 15s, want %v", pattern, !want, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
