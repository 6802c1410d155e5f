package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
)

type body struct {
	Name string `json:"name"`
}

func TestBind(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"valid", `{"name":"a"}`, ""},
		{"unknown field", `{"name":"a","role":"admin"}`, `unknown field "role"`},
		{"malformed", `{"name":`, "invalid JSON"},
		{"empty", ``, "empty"},
		{"trailing data", `{"name":"a"} {}`, "trailing data"},
		{"wrong type", `{"name":1}`, "invalid JSON"},
		{"too large", `{"name":"` + strings.Repeat("x", MaxBody) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.in))
			var b body
			err := Bind(c, &b)
			if tt.wantErr == "" {
				if err != nil || b.Name != "a" {
					t.Fatalf("Bind = %v, %+v; want nil, name a", err, b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Bind error = %v, want one containing %q", err, tt.wantErr)
			}
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Errorf("Bind error code = %s, want invalid", apperr.CodeOf(err))
			}
		})
	}
}

func TestFailHidesInternalErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
	}{
		{"application error", apperr.NotFound("project x not found"), 404, "project x not found"},
		{"wrapped application error", errors.Join(errors.New("ctx"), apperr.Conflict("busy")), 409, "busy"},
		{"internal error", errors.New("pq: password=hunter2 failed"), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest(http.MethodGet, "/x", nil)
			Fail(c, slog.New(slog.NewTextHandler(io.Discard, nil)), tt.err)
			var got struct{ Code, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.wantStatus || got.Message != tt.wantMsg {
				t.Errorf("Fail = %d %q, want %d %q", w.Code, got.Message, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

func TestHealthAndGracefulServe(t *testing.T) {
	e := NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ready := errors.New("redis down")
	Health(e, Check{Name: "redis", Fn: func(context.Context) error { return ready }})
	release, entered := make(chan struct{}), make(chan struct{})
	e.GET("/slow", func(c *gin.Context) { close(entered); <-release; c.String(200, "done") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, e, 5*time.Second) }()
	base := "http://" + ln.Addr().String()

	for _, tt := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 503}} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}
	ready = nil
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /readyz once ready = %d, want 200", resp.StatusCode)
	}

	// A request in flight when shutdown starts still gets its answer.
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	// Shut down only once the slow handler runs: before that the request is not in flight
	// (its connection may not even be accepted yet) and may rightly be refused.
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow handler never started")
	}
	cancel()
	close(release)
	if s := <-got; s != "done" {
		t.Errorf("in-flight request got %q, want done", s)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after graceful shutdown", err)
	}
}

func TestLogPathHidesTriggerTokens(t *testing.T) {
	for in, want := range map[string]string{
		"/trigger/abcDEF123_-":  "/trigger/****",
		"/trigger":              "/trigger",
		"/api/v1/projects/x":    "/api/v1/projects/x",
		"/hooks/github/my-site": "/hooks/github/my-site",
	} {
		if got := LogPath(in); got != want {
			t.Errorf("LogPath(%q) = %q, want %q", in, got, want)
		}
	}
}
