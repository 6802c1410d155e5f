package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/store/storetest"
)

// linkedProject creates project name, syncs a connection to f and links the project to
// repository repo-01 there.
func (e *forgeEnv) linkedProject(f *fakeForge, name string) (ProjectBody, ConnectionBody) {
	e.t.Helper()
	var p ProjectBody
	e.must(http.StatusCreated, "POST", "/api/v1/projects", map[string]any{"name": name,
		"git_url": "https://example.com/" + name + ".git", "type": "static", "source_dir": ".", "branch": "main",
		"deploy_path": "/srv/" + name}, &p)
	c := e.connect(f, name+"-src")
	e.must(http.StatusOK, "POST", "/api/v1/connections/"+c.ID+"/sync", nil, nil)
	var src SourceBody
	path := platformAPI[f.platform].ns + "/repo-01"
	e.must(http.StatusOK, "PUT", "/api/v1/projects/"+p.ID+"/source", map[string]any{"connection_id": c.ID, "repo_path": path}, &src)
	if src.ConnectionID != c.ID || src.RepoPath != path || src.Platform != string(f.platform) {
		e.t.Fatalf("source = %+v", src)
	}
	return p, c
}

// fixtureRefs reads the names (or, for commits, the SHAs) and commits of a list fixture.
func fixtureRefs(t *testing.T, file string, commits bool) (names, shas []string) {
	var list []struct {
		Name   string `json:"name"`
		ID     string `json:"id"`
		SHA    string `json:"sha"`
		Commit struct {
			ID  string `json:"id"`
			SHA string `json:"sha"`
		} `json:"commit"`
	}
	if err := json.Unmarshal(fixture(t, file), &list); err != nil {
		t.Fatalf("fixture %s: %v", file, err)
	}
	for _, r := range list {
		if commits {
			names = append(names, r.ID+r.SHA)
			shas = append(shas, r.ID+r.SHA)
		} else {
			names = append(names, r.Name)
			shas = append(shas, r.Commit.ID+r.Commit.SHA)
		}
	}
	return names, shas
}

func TestLiveRefs(t *testing.T) {
	files := map[forge.Platform]map[string]string{
		forge.GitLab: {"branch": "gitlab-api/branches_list.go-gitlab.json", "tag": "gitlab-api/tags_list.go-scm.json", "commit": "gitlab-api/commits_list.go-scm.json"},
		forge.GitHub: {"branch": "github-api/branches_list.go-scm.json", "tag": "github-api/tags_list.docs.json", "commit": "github-api/commits_list.go-scm.json"},
		forge.Gitee:  {"branch": "gitee-api/branches_list.go-scm.json", "tag": "gitee-api/tags_list.go-scm.json", "commit": "gitee-api/commits_list.go-scm.json"},
	}
	for _, platform := range []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee} {
		t.Run(string(platform), func(t *testing.T) {
			e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{})
			f := newFakeForge(t, platform, 2)
			p, _ := e.linkedProject(f, "shop")
			for _, kind := range []string{"branch", "tag", "commit"} {
				wantNames, wantSHAs := fixtureRefs(t, files[platform][kind], kind == "commit")
				var page RefPage
				e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/refs?kind="+kind, nil, &page)
				var names, shas []string
				for _, r := range page.Refs {
					names, shas = append(names, r.Name), append(shas, r.Commit)
					if r.Kind != kind {
						t.Errorf("%s ref %+v has kind %q", kind, r, r.Kind)
					}
				}
				if len(names) == 0 || !slices.Equal(names, wantNames) || !slices.Equal(shas, wantSHAs) {
					t.Errorf("%s refs = %v %v, want %v %v (from the fixture)", kind, names, shas, wantNames, wantSHAs)
				}
				if page.NextPage != 0 || page.Page != 1 {
					t.Errorf("%s page = %d next %d, want 1 and 0", kind, page.Page, page.NextPage)
				}
			}
			f.mu.Lock()
			for _, r := range f.hookRepo {
				t.Errorf("refs touched hooks of %s", r)
			}
			f.mu.Unlock()
		})
	}
}

func TestRefsNeedAConnection(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{})
	var p ProjectBody
	e.must(http.StatusCreated, "POST", "/api/v1/projects", map[string]any{"name": "plain",
		"git_url": "https://example.com/plain.git", "type": "static", "source_dir": ".", "branch": "main", "deploy_path": "/srv/plain"}, &p)
	var out struct{ Code, Message string }
	if got := e.do("GET", "/api/v1/projects/"+p.ID+"/refs?kind=branch", nil, &out); got != http.StatusBadRequest ||
		!strings.Contains(out.Message, "no forge connection") {
		t.Errorf("refs of a project without a connection: %d %+v, want 400 saying it has no forge connection", got, out)
	}
	if got := e.do("POST", "/api/v1/projects/"+p.ID+"/hook", nil, &out); got != http.StatusBadRequest {
		t.Errorf("hook of a project without a connection: %d %+v, want 400", got, out)
	}
	f := newFakeForge(t, forge.GitLab, 1)
	linked, c := e.linkedProject(f, "shop")
	for _, tt := range []struct {
		name, path string
		body       any
		want       int
	}{
		{"bad kind", "/api/v1/projects/" + linked.ID + "/refs?kind=note", nil, 400},
		{"bad page", "/api/v1/projects/" + linked.ID + "/refs?page=0", nil, 400},
		{"hostile commit ref", "/api/v1/projects/" + linked.ID + "/refs?kind=commit&ref=$(id)", nil, 400},
		{"unknown project", "/api/v1/projects/nope/refs", nil, 404},
		{"source repo not synced", "/api/v1/projects/" + p.ID + "/source", map[string]any{"connection_id": c.ID, "repo_path": "team/other"}, 400},
		{"source connection unknown", "/api/v1/projects/" + p.ID + "/source", map[string]any{"connection_id": "nope", "repo_path": "team/repo-01"}, 400},
	} {
		method := "GET"
		if tt.body != nil {
			method = "PUT"
		}
		if got := e.do(method, tt.path, tt.body, nil); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	// A connection that is the source of a project cannot be deleted.
	if got := e.do("DELETE", "/api/v1/connections/"+c.ID, nil, nil); got != http.StatusConflict {
		t.Errorf("delete a connection in use: status %d, want 409", got)
	}
	// A removed repository cannot become a source.
	_, byPath := e.repos(c.ID, "")
	e.must(http.StatusOK, "DELETE", "/api/v1/connections/"+c.ID+"/repos/"+byPath["team/repo-01"].ID, nil, nil)
	if got := e.do("PUT", "/api/v1/projects/"+p.ID+"/source", map[string]any{"connection_id": c.ID, "repo_path": "team/repo-01"}, nil); got != http.StatusBadRequest {
		t.Errorf("removed repository as a source: status %d, want 400", got)
	}
}

// A branch search finds matches beyond the first page on every platform, though GitHub and
// Gitee cannot filter branches themselves: the gateway reads on until it has a page of
// matches or the platform has no more, at most searchPages pages, and next_page says where
// to go on.
func TestBranchSearchSpansPages(t *testing.T) {
	for _, platform := range []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee} {
		t.Run(string(platform), func(t *testing.T) {
			e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{})
			f := newFakeForge(t, platform, 2)
			var want []string
			for i := range 3 * refsPerPage {
				name := fmt.Sprintf("feature-%03d", i)
				if i == 30 || i == 75 || i == 140 {
					name = fmt.Sprintf("hotfix-%03d", i)
					want = append(want, name)
				}
				f.branches = append(f.branches, name)
			}
			for i := range (searchPages + 2) * refsPerPage { // after the search budget: never reached
				f.branches = append(f.branches, fmt.Sprintf("later-%04d", i))
			}
			p, _ := e.linkedProject(f, "shop")
			var page RefPage
			e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/refs?kind=branch&search=hotfix", nil, &page)
			var names []string
			for _, r := range page.Refs {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("search hotfix = %v, want %v", names, want)
			}
			f.mu.Lock()
			asked := slices.Clone(f.branchPages)
			f.mu.Unlock()
			if platform == forge.GitLab {
				// GitLab searches itself: one page holds every match.
				if page.NextPage != 0 || len(asked) != 1 {
					t.Errorf("gitlab: pages asked %v, next %d; want one page and no next", asked, page.NextPage)
				}
				return
			}
			if len(asked) != searchPages || page.NextPage != searchPages+1 {
				t.Errorf("pages asked %v, next %d; want %d pages and next %d", asked, page.NextPage, searchPages, searchPages+1)
			}
			// Going on from next_page continues where the search stopped.
			e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/projects/%s/refs?kind=branch&search=hotfix&page=%d", p.ID, page.NextPage), nil, &page)
			if len(page.Refs) != 0 || page.NextPage != 0 {
				t.Errorf("second search: %d refs, next %d; want none and the end", len(page.Refs), page.NextPage)
			}
			// Without a search, one page is one platform page.
			f.mu.Lock()
			f.branchPages = nil
			f.mu.Unlock()
			e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/refs?kind=branch", nil, &page)
			if len(page.Refs) != refsPerPage || page.NextPage != 2 || len(f.branchPages) != 1 {
				t.Errorf("unsearched page: %d refs, next %d, pages asked %v", len(page.Refs), page.NextPage, f.branchPages)
			}
		})
	}
}
