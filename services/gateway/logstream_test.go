package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"gorm.io/gorm"

	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// readSocket reads frames until "end" or until n line frames arrived.
func readSocket(ctx context.Context, t *testing.T, url string, stopAfter int) (lines []int, end string) {
	t.Helper()
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	defer conn.CloseNow()
	for {
		var m logMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("read: %v (lines so far %v)", err, lines)
		}
		switch m.Type {
		case "line":
			lines = append(lines, m.N)
			if m.Text != fmt.Sprintf("line %d", m.N) {
				t.Errorf("line %d text %q", m.N, m.Text)
			}
			if stopAfter > 0 && len(lines) == stopAfter {
				return lines, ""
			}
		case "end":
			return lines, m.Status
		}
	}
}

func TestLiveLogStreamsAndResumes(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
				"projects": []any{project("shop", "web-1")}}, nil)
			var ps []ProjectBody
			e.call("GET", "/api/v1/projects", nil, &ps)
			var r RunBody
			e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &r)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			w, err := runlog.NewWriter(ctx, e.db.DB, r.ID, []string{"s3cr3t-value"})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				fmt.Fprintf(w.Stream(runlog.StreamStdout), "line %d\n", i)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			base := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/api/v1/runs/" + r.ID + "/logs/ws?access_token=" + token
			got, _ := readSocket(ctx, t, base+"&after=0", 3)
			if fmt.Sprint(got) != "[1 2 3]" {
				t.Fatalf("first connection lines %v, want [1 2 3]", got)
			}
			// Lines arrive while nobody watches; the run then finishes.
			for i := 4; i <= 6; i++ {
				fmt.Fprintf(w.Stream(runlog.StreamStdout), "line %d\n", i)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			run, _ := runs.Get(e.db.DB, r.ID)
			err = e.db.Tx(ctx, func(tx *gorm.DB) error {
				return runs.Finish(tx, run, []runs.Status{runs.StatusRequested}, runs.StatusFailed, "stopped by test", 0)
			})
			if err != nil {
				t.Fatal(err)
			}
			got, end := readSocket(ctx, t, base+"&after=3", 0)
			if fmt.Sprint(got) != "[4 5 6]" || end != "failed" {
				t.Fatalf("resumed connection lines %v end %q, want [4 5 6] failed", got, end)
			}
			var page struct {
				Lines []runlog.Line `json:"lines"`
				Done  bool          `json:"done"`
			}
			if s := e.call("GET", "/api/v1/runs/"+r.ID+"/logs?after=4&limit=1", nil, &page); s != 200 || len(page.Lines) != 1 || page.Lines[0].Line != 5 || page.Done {
				t.Errorf("log page = %d %+v, want line 5, not done", s, page)
			}
			e.call("GET", "/api/v1/runs/"+r.ID+"/logs?after=4", nil, &page)
			if len(page.Lines) != 2 || !page.Done {
				t.Errorf("last log page = %+v, want lines 5-6 and done", page)
			}
			// Without a token the socket is refused before upgrading.
			resp, err := http.Get(e.srv.URL + "/api/v1/runs/" + r.ID + "/logs/ws")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("socket without token = %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestLogMasksSecrets(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
		"projects": []any{project("shop", "web-1")}}, nil)
	var ps []ProjectBody
	e.call("GET", "/api/v1/projects", nil, &ps)
	var r RunBody
	e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &r)
	w, err := runlog.NewWriter(context.Background(), e.db.DB, r.ID, []string{"s3cr3t-value"})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w.Stream(runlog.StreamStderr), "token=s3cr3t-value and more\nno newline at the end")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Lines []runlog.Line `json:"lines"`
	}
	e.call("GET", "/api/v1/runs/"+r.ID+"/logs", nil, &page)
	if len(page.Lines) != 2 || page.Lines[0].Text != "token=**** and more" || page.Lines[0].Stream != "stderr" ||
		page.Lines[1].Text != "no newline at the end" {
		t.Errorf("lines = %+v", page.Lines)
	}
}
