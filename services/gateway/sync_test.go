package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/store/storetest"
)

// connect creates a connection to fake platform f.
func (e *forgeEnv) connect(f *fakeForge, name string) ConnectionBody {
	e.t.Helper()
	var c ConnectionBody
	e.must(http.StatusCreated, "POST", "/api/v1/connections",
		map[string]any{"name": name, "platform": string(f.platform), "base_url": f.srv.URL, "token": forgeToken}, &c)
	return c
}

// repos lists a connection's repositories by path.
func (e *forgeEnv) repos(connID, query string) (RepoPage, map[string]RepoBody) {
	e.t.Helper()
	var page RepoPage
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+connID+"/repos?per_page=200&"+query, nil, &page)
	byPath := map[string]RepoBody{}
	for _, r := range page.Repos {
		byPath[r.Path] = r
	}
	return page, byPath
}

func TestSyncAcrossPagesGoneAndRemoved(t *testing.T) {
	for _, driver := range storetest.Drivers {
		for _, platform := range []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee} {
			t.Run(driver+"/"+string(platform), func(t *testing.T) {
				testSync(t, driver, platform)
			})
		}
	}
}

func testSync(t *testing.T, driver string, platform forge.Platform) {
	e := newForgeEnv(t, driver, ForgeConfig{})
	f := newFakeForge(t, platform, 5) // 3 pages of 2
	ns := platformAPI[platform].ns + "/"
	c := e.connect(f, "src")

	var res SyncResult
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, &res)
	if want := (SyncResult{Seen: 5, Created: 5}); res != want {
		t.Errorf("first sync = %+v, want %+v", res, want)
	}
	if !slices.Equal(f.pages, []int{1, 2, 3}) {
		t.Errorf("pages asked for = %v, want [1 2 3]", f.pages)
	}
	page, byPath := e.repos(c.ID, "")
	if page.Total != 5 || page.SyncState != SyncOK || page.SyncedAt == nil {
		t.Fatalf("repos after the first sync = %+v", page)
	}
	r1 := byPath[ns+"repo-01"]
	if r1.RemoteID != "1001" || r1.Name != "repo-01" || r1.Gone || r1.Removed || r1.FirstSeenAt.IsZero() {
		t.Errorf("repo-01 = %+v", r1)
	}
	var search RepoPage
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID+"/repos?search=REPO-03", nil, &search)
	if len(search.Repos) != 1 || search.Repos[0].Path != ns+"repo-03" {
		t.Errorf("search REPO-03 = %+v", search.Repos)
	}
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID+"/repos?search=%25", nil, &search)
	if len(search.Repos) != 0 {
		t.Errorf("search %% matched %d repositories, want none (it is not a wildcard)", len(search.Repos))
	}
	var p2 RepoPage
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID+"/repos?per_page=2&page=2", nil, &p2)
	if len(p2.Repos) != 2 || p2.Repos[0].Path != ns+"repo-03" || p2.NextPage != 3 || p2.Total != 5 {
		t.Errorf("page 2 of 2 = %+v", p2)
	}

	// A user removes repo-02; the platform drops repo-04 and renames repo-01.
	var removed RepoBody
	e.must(http.StatusOK, "DELETE", "/api/v1/connections/"+c.ID+"/repos/"+byPath[ns+"repo-02"].ID, nil, &removed)
	if !removed.Removed {
		t.Errorf("removed = %+v", removed)
	}
	if got := e.do("DELETE", "/api/v1/connections/"+c.ID+"/repos/nope", nil, nil); got != http.StatusNotFound {
		t.Errorf("remove unknown repo: status %d, want 404", got)
	}
	f.dropRepo(4)
	f.setRepoName(1, "repo-01-renamed")
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, &res)
	if want := (SyncResult{Seen: 4, Updated: 1, Gone: 1}); res != want {
		t.Errorf("second sync = %+v, want %+v", res, want)
	}
	page, byPath = e.repos(c.ID, "")
	if page.Total != 4 {
		t.Errorf("visible repositories = %d, want 4 (repo-02 removed)", page.Total)
	}
	if _, ok := byPath[ns+"repo-02"]; ok {
		t.Error("removed repo-02 is listed without include_removed")
	}
	_, all := e.repos(c.ID, "include_removed=true")
	if r := all[ns+"repo-02"]; !r.Removed || r.Gone {
		t.Errorf("repo-02 after a sync = %+v, want still removed", r)
	}
	if r := all[ns+"repo-04"]; !r.Gone || r.ID == "" {
		t.Errorf("repo-04 after the platform dropped it = %+v, want kept and gone", r)
	}
	if r := all[ns+"repo-01-renamed"]; r.RemoteID != "1001" || r.ID != r1.ID || !r.LastSeenAt.After(r1.LastSeenAt) {
		t.Errorf("renamed repo-01 = %+v, want the same row (%s) seen later", r, r1.ID)
	}

	// Nothing changed: nothing is counted; a repository that comes back is no longer gone.
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, &res)
	if want := (SyncResult{Seen: 4}); res != want {
		t.Errorf("unchanged sync = %+v, want %+v", res, want)
	}
	f.addRepo(4, "repo-04")
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, &res)
	if want := (SyncResult{Seen: 5, Updated: 1}); res != want {
		t.Errorf("sync after repo-04 came back = %+v, want %+v", res, want)
	}

	// A walk that fails on page 2 after repo-05 is dropped marks nothing gone.
	before, _ := e.repos(c.ID, "")
	f.dropRepo(5)
	f.mu.Lock()
	f.failPage, f.pages = 2, nil
	f.mu.Unlock()
	var failure map[string]any
	if got := e.do("POST", "/api/v1/connections/"+c.ID+"/sync", nil, &failure); got < 500 {
		t.Errorf("failed sync: status %d %v, want 5xx", got, failure)
	}
	if !slices.Equal(f.pages, []int{1, 2}) {
		t.Errorf("failed walk asked for pages %v, want [1 2]", f.pages)
	}
	page, byPath = e.repos(c.ID, "")
	if r := byPath[ns+"repo-05"]; r.Gone || r.ID == "" {
		t.Errorf("repo-05 after a failed sync = %+v, want not gone", r)
	}
	if page.SyncState != SyncFailed || page.SyncError == "" || page.SyncedAt == nil || !page.SyncedAt.Equal(*before.SyncedAt) {
		t.Errorf("connection after a failed sync: state %q error %q synced_at %v, want failed, an error, synced_at kept at %v",
			page.SyncState, page.SyncError, page.SyncedAt, before.SyncedAt)
	}
	if strings.Contains(page.SyncError, forgeToken) {
		t.Errorf("sync_error shows the token: %q", page.SyncError)
	}
	var conn ConnectionBody
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID, nil, &conn)
	if conn.SyncState != SyncFailed || conn.SyncError != page.SyncError {
		t.Errorf("connection = %+v, want the failure recorded", conn)
	}

	// The next complete walk marks repo-05 gone and clears the error; a restored
	// repository is listed again.
	f.mu.Lock()
	f.failPage = 0
	f.mu.Unlock()
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, &res)
	if res.Gone != 1 {
		t.Errorf("sync after the failure = %+v, want repo-05 gone", res)
	}
	var restored RepoBody
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/repos/"+all[ns+"repo-02"].ID+"/restore", nil, &restored)
	if restored.Removed {
		t.Errorf("restored = %+v", restored)
	}
	page, _ = e.repos(c.ID, "")
	if page.Total != 5 || page.SyncState != SyncOK || page.SyncError != "" {
		t.Errorf("after restore: total %d state %q error %q, want 5 ok ''", page.Total, page.SyncState, page.SyncError)
	}
	// Deleting the connection takes its repositories with it.
	e.must(http.StatusNoContent, "DELETE", "/api/v1/connections/"+c.ID, nil, nil)
	var n int64
	if err := e.db.Table("forge_repos").Where("connection_id = ?", c.ID).Count(&n).Error; err != nil || n != 0 {
		t.Errorf("repositories left after deleting the connection: %d, %v", n, err)
	}
}

func TestPeriodicSync(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{SyncInterval: 50 * time.Millisecond})
	f := newFakeForge(t, forge.GitHub, 3)
	c := e.connect(f, "src")
	// A connection whose platform is down fails alone; the others still sync.
	down := newFakeForge(t, forge.GitLab, 1)
	down.failPage = 1
	d := e.connect(down, "down")

	s, err := New(Config{Secrets: e.keys, ForgeConfig: ForgeConfig{SyncInterval: 50 * time.Millisecond, NewForgeClient: testForgeClient}}, e.db, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, _ := e.repos(c.ID, "")
		var dc ConnectionBody
		e.must(http.StatusOK, "GET", "/api/v1/connections/"+d.ID, nil, &dc)
		if page.Total == 3 && page.SyncState == SyncOK && dc.SyncState == SyncFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("periodic sync did not record both connections: repos %d state %q, down %q", page.Total, page.SyncState, dc.SyncState)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It keeps running: a new repository appears without a manual sync.
	f.addRepo(4, "repo-04")
	for {
		if page, _ := e.repos(c.ID, ""); page.Total == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the periodic sync did not pick up a new repository")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestSyncOfAnUnreachablePlatform(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{})
	for _, platform := range []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee} {
		f := newFakeForge(t, platform, 1)
		c := e.connect(f, "gone-"+string(platform))
		f.srv.Close() // connection refused: a transport error, whose URL may hold the token (Gitee)
		var out struct{ Code, Message string }
		if got := e.do("POST", "/api/v1/connections/"+c.ID+"/sync", nil, &out); got != http.StatusServiceUnavailable {
			t.Errorf("%s: sync of an unreachable platform: %d %+v, want 503", platform, got, out)
		}
		var conn ConnectionBody
		e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID, nil, &conn)
		if conn.SyncState != SyncFailed || conn.SyncError == "" || conn.SyncedAt != nil {
			t.Errorf("%s: connection = %+v, want failed with an error and never synced", platform, conn)
		}
	}
}
