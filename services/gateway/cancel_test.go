package gateway

import (
	"testing"

	"fabu.dev/libs/store"
)

// TestCancelRun: a requested run is cancelled at once and says by whom, a final run is a
// conflict, an unknown run is not found, and a building run is only marked for its worker.
func TestCancelRun(t *testing.T) {
	e := newEnv(t, store.SQLite)
	e.call("POST", "/api/v1/apply", map[string]any{"servers": []any{server("web-1")},
		"projects": []any{project("shop", "web-1")}}, nil)
	var ps []ProjectBody
	e.call("GET", "/api/v1/projects", nil, &ps)
	var r RunBody
	if s := e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &r); s != 201 {
		t.Fatalf("start run = %d", s)
	}
	var got RunBody
	if s := e.call("POST", "/api/v1/runs/"+r.ID+"/cancel", nil, &got); s != 202 {
		t.Fatalf("cancel requested run = %d, want 202", s)
	}
	if got.Status != "cancelled" || got.FinishedAt == nil || got.Error == "" {
		t.Errorf("cancelled run = %+v, want status cancelled, finished, with who cancelled", got)
	}
	if s := e.call("POST", "/api/v1/runs/"+r.ID+"/cancel", nil, nil); s != 409 {
		t.Errorf("cancel final run = %d, want 409", s)
	}
	if s := e.call("POST", "/api/v1/runs/nope/cancel", nil, nil); s != 404 {
		t.Errorf("cancel unknown run = %d, want 404", s)
	}

	// A queued run, too.
	var q RunBody
	e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &q)
	e.exec(`UPDATE runs SET status = 'queued' WHERE id = ?`, q.ID)
	if s := e.call("POST", "/api/v1/runs/"+q.ID+"/cancel", nil, &got); s != 202 || got.Status != "cancelled" {
		t.Errorf("cancel queued run = %d %s, want 202 cancelled", s, got.Status)
	}

	// A building run stays building until its worker sees the mark.
	var b RunBody
	e.call("POST", "/api/v1/projects/"+ps[0].ID+"/runs", nil, &b)
	e.exec(`UPDATE runs SET status = 'building', lock_token = 7 WHERE id = ?`, b.ID)
	if s := e.call("POST", "/api/v1/runs/"+b.ID+"/cancel", nil, &got); s != 202 || got.Status != "building" {
		t.Errorf("cancel building run = %d %s, want 202 building", s, got.Status)
	}
	var at, by string
	if err := e.db.Raw(`SELECT COALESCE(CAST(cancel_requested_at AS TEXT), ''), cancel_requested_by FROM runs WHERE id = ?`, b.ID).Row().Scan(&at, &by); err != nil {
		t.Fatal(err)
	}
	if at == "" || by == "" {
		t.Errorf("building run cancel mark = %q by %q, want set", at, by)
	}
}
