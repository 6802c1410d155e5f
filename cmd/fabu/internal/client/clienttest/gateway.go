// Package clienttest runs a fake fabu gateway on a real HTTP server, for tests of the client
// and of the commands built on it. It implements the endpoints the client uses as the API
// contract describes them: it checks methods, paths, the bearer token and decodes bodies
// strictly, and answers errors as {code, message}.
package clienttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/libs/apperr"
)

// Event is one step of a scripted run: a log line when Text is set, else a status change.
type Event struct {
	Stream   string // "stdout" (default) or "stderr"
	Text     string
	Status   string
	Progress int
	// FinishIn, when set, is sent with the status as the run's estimated finish (that far
	// from now) and the seconds left, as fabu does for a run with history.
	FinishIn time.Duration
}

// Script is what the next run of a project does: its events in order, then its final
// status and error.
type Script struct {
	Events []Event
	Final  string
	Error  string
}

// Gateway is a fake gateway. Set its exported knobs before the requests they affect.
type Gateway struct {
	URL      string // base URL of the server
	User     string // the one user that can log in
	Password string
	Token    string // the API token POST /auth/api-tokens issues; every other endpoint requires it
	// SessionToken is the access token login issues; only POST /auth/api-tokens and
	// /auth/logout accept it, as a real server would after it expires.
	SessionToken string
	// NoAPITokens makes POST /auth/api-tokens answer 404, like a server older than API
	// tokens; login then hands out Token itself.
	NoAPITokens bool

	// PageSize is how many lines one GET /logs page holds (default 2, to make clients page).
	PageSize int
	// DropAfter makes the log socket close abruptly, without a close frame, after sending
	// this many lines on one connection (0: never).
	DropAfter int
	// Overlap makes a log socket opened with after=N resend this many lines at or below N,
	// as a server may after a reconnect; clients must drop them.
	Overlap int
	// NoWebSocket makes the log socket endpoint answer 503, so clients must poll.
	NoWebSocket bool

	mu       sync.Mutex
	requests []string
	servers  []client.ServerSpec
	projects []*project
	runs     map[string]*run
	applied  []client.ApplyDoc
	nextID   int

	apiTokens []string
	loggedOut int
}

type project struct {
	client.ProjectSpec
	id     string
	script Script
}

type run struct {
	client.Run
	events []Event
}

// Start runs a fake gateway until the test ends.
func Start(t testing.TB) *Gateway {
	g := &Gateway{User: "alice", Password: "correct horse", Token: "fabu_tok-3f9a1c0d5e", SessionToken: "acc.ess.token-77e1",
		PageSize: 2, runs: map[string]*run{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", g.login)
	mux.HandleFunc("POST /api/v1/auth/api-tokens", g.createAPIToken)
	mux.HandleFunc("POST /api/v1/auth/logout", g.logout)
	mux.HandleFunc("POST /api/v1/apply", g.auth(g.apply))
	mux.HandleFunc("GET /api/v1/projects", g.auth(g.listProjects))
	mux.HandleFunc("POST /api/v1/projects/{id}/runs", g.auth(g.startRun))
	mux.HandleFunc("GET /api/v1/runs/{id}", g.auth(g.getRun))
	mux.HandleFunc("GET /api/v1/runs/{id}/logs", g.auth(g.logs))
	mux.HandleFunc("GET /api/v1/runs/{id}/logs/ws", g.auth(g.logSocket))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.requests = append(g.requests, r.Method+" "+r.URL.RequestURI())
		g.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// AddProject creates a project whose runs follow script.
func (g *Gateway) AddProject(name string, script Script) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextID++
	g.projects = append(g.projects, &project{
		ProjectSpec: client.ProjectSpec{Name: name, GitURL: "https://git.example.com/" + name + ".git", DeployPath: "/srv/" + name},
		id:          "prj-" + strconv.Itoa(g.nextID),
		script:      script,
	})
}

// Requests returns "METHOD /path?query" of every request received so far.
func (g *Gateway) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

// Applied returns the documents POST /apply accepted, as decoded.
func (g *Gateway) Applied() []client.ApplyDoc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]client.ApplyDoc(nil), g.applied...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, e *apperr.Error) {
	writeJSON(w, apperr.HTTPStatus(e.Code), e)
}

// decode reads a JSON body strictly, as the gateway does.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		writeErr(w, apperr.Invalid("content type %q, want application/json", ct))
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, apperr.Invalid("bad request body: %v", err))
		return false
	}
	return true
}

func (g *Gateway) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+g.Token {
			writeErr(w, apperr.Unauthorized("missing or invalid token"))
			return
		}
		h(w, r)
	}
}

func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password string }
	if !decode(w, r, &in) {
		return
	}
	if in.Username != g.User || in.Password != g.Password {
		writeErr(w, apperr.Unauthorized("wrong user name or password"))
		return
	}
	tok := g.SessionToken
	if g.NoAPITokens {
		tok = g.Token
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token": tok, "access_token": tok, "refresh_token": "refresh-" + tok,
		"user": map[string]string{"id": "usr-1", "username": g.User, "role": "admin"},
	})
}

func (g *Gateway) createAPIToken(w http.ResponseWriter, r *http.Request) {
	if g.NoAPITokens {
		writeErr(w, apperr.NotFound("no such route"))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+g.SessionToken {
		writeErr(w, apperr.Unauthorized("missing or invalid token"))
		return
	}
	var in struct {
		Name          string   `json:"name"`
		Scopes        []string `json:"scopes"`
		ExpiresInDays int      `json:"expires_in_days"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Name == "" || len(in.Scopes) == 0 || in.ExpiresInDays < 1 {
		writeErr(w, apperr.Invalid("name, scopes and expires_in_days are required"))
		return
	}
	g.mu.Lock()
	g.apiTokens = append(g.apiTokens, in.Name+" "+strings.Join(in.Scopes, ",")+" "+strconv.Itoa(in.ExpiresInDays))
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": "tok-1", "name": in.Name, "scopes": in.Scopes,
		"expires_at": time.Now().Add(time.Duration(in.ExpiresInDays) * 24 * time.Hour), "token": g.Token})
}

func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+g.SessionToken {
		writeErr(w, apperr.Unauthorized("missing or invalid token"))
		return
	}
	g.mu.Lock()
	g.loggedOut++
	g.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// APITokens returns "name scopes days" of each API token created.
func (g *Gateway) APITokens() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.apiTokens...)
}

// LoggedOut counts the sessions ended through POST /auth/logout.
func (g *Gateway) LoggedOut() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.loggedOut
}

func (g *Gateway) listProjects(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	list := []client.Project{}
	for _, p := range g.projects {
		list = append(list, client.Project{ID: p.id, Name: p.Name, GitURL: p.GitURL, Type: p.Type,
			SourceDir: p.SourceDir, Branch: p.Branch, DeployPath: p.DeployPath,
			KeepReleases: p.KeepReleases, ServerIDs: []string{}, HasWebhookSecret: p.WebhookSecret != ""})
	}
	writeJSON(w, http.StatusOK, list)
}

func (g *Gateway) startRun(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Ref string `json:"ref"`
	}
	if !decode(w, r, &in) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.projects {
		if p.id != r.PathValue("id") {
			continue
		}
		g.nextID++
		ref := in.Ref
		if ref == "" {
			ref = "main"
		}
		now := time.Now().UTC()
		rn := &run{Run: client.Run{ID: "run-" + strconv.Itoa(g.nextID), ProjectID: p.id, Project: p.Name,
			Ref: ref, Commit: "0123456789abcdef", Status: client.StatusQueued, Trigger: "api", CreatedAt: now}}
		rn.events = p.script.Events
		g.runs[rn.ID] = rn
		writeJSON(w, http.StatusCreated, rn.Run)
		// From here on the run is over: the fake plays its script to whoever asks.
		rn.Status, rn.Error, rn.Progress = p.script.Final, p.script.Error, 100
		rn.StartedAt, rn.FinishedAt = &now, &now
		return
	}
	writeErr(w, apperr.NotFound("project not found"))
}

func (g *Gateway) findRun(w http.ResponseWriter, r *http.Request) (*run, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rn, ok := g.runs[r.PathValue("id")]
	if !ok {
		writeErr(w, apperr.NotFound("run not found"))
	}
	return rn, ok
}

func (g *Gateway) getRun(w http.ResponseWriter, r *http.Request) {
	if rn, ok := g.findRun(w, r); ok {
		writeJSON(w, http.StatusOK, rn.Run)
	}
}

// lines numbers the run's log lines from 1.
func (rn *run) lines() []client.Line {
	var out []client.Line
	for _, e := range rn.events {
		if e.Text == "" {
			continue
		}
		stream := e.Stream
		if stream == "" {
			stream = "stdout"
		}
		out = append(out, client.Line{N: int64(len(out) + 1), TS: time.Unix(1700000000+int64(len(out)), 0).UTC(), Stream: stream, Text: e.Text})
	}
	return out
}

func afterParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil || after < 0 {
		writeErr(w, apperr.Invalid("after must be a line number"))
		return 0, false
	}
	return after, true
}

func (g *Gateway) logs(w http.ResponseWriter, r *http.Request) {
	rn, ok := g.findRun(w, r)
	if !ok {
		return
	}
	after, ok := afterParam(w, r)
	if !ok {
		return
	}
	page := client.LogPage{Lines: []client.Line{}, Status: rn.Status}
	for _, l := range rn.lines() {
		if l.N > after && len(page.Lines) < g.PageSize {
			page.Lines = append(page.Lines, l)
		}
	}
	all := rn.lines()
	page.Done = len(all) == 0 || (len(page.Lines) == 0 && after >= all[len(all)-1].N) ||
		(len(page.Lines) > 0 && page.Lines[len(page.Lines)-1].N == all[len(all)-1].N)
	writeJSON(w, http.StatusOK, page)
}

func (g *Gateway) logSocket(w http.ResponseWriter, r *http.Request) {
	if g.NoWebSocket {
		writeErr(w, apperr.Unavailable("live logs are unavailable"))
		return
	}
	rn, ok := g.findRun(w, r)
	if !ok {
		return
	}
	after, ok := afterParam(w, r)
	if !ok {
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	from := max(after-int64(g.Overlap), 0)
	var n int64
	sent := 0
	lines := rn.lines()
	for _, e := range rn.events {
		var msg any
		if e.Text != "" {
			n++
			if n <= from {
				continue
			}
			if g.DropAfter > 0 && sent == g.DropAfter {
				return // abrupt: no close frame, no end
			}
			l := lines[n-1]
			msg = map[string]any{"type": "line", "n": l.N, "ts": l.TS, "stream": l.Stream, "text": l.Text}
			sent++
		} else {
			if n < after {
				continue
			}
			m := map[string]any{"type": "status", "status": e.Status, "progress": e.Progress}
			if e.FinishIn > 0 {
				m["eta_seconds"], m["estimated_finish_at"] = int64(e.FinishIn/time.Second), time.Now().Add(e.FinishIn).UTC()
			}
			msg = m
		}
		if err := write(ctx, conn, msg); err != nil {
			return
		}
	}
	if err := write(ctx, conn, map[string]any{"type": "end", "status": rn.Status}); err != nil {
		return
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

func write(ctx context.Context, conn *websocket.Conn, msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return conn.Write(ctx, websocket.MessageText, b)
}
