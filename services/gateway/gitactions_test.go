package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/store"
)

// A project's merge refs and post-success git actions go through the API with validation,
// are stored for the builder, and come back; bad ones are 400 with a message naming them.
func TestProjectGitSettings(t *testing.T) {
	for _, driver := range []string{store.SQLite, store.Postgres} {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			body := func(over map[string]any) map[string]any {
				p := map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git", "type": "static",
					"source_dir": "dist", "branch": "main", "deploy_path": "/srv/shop"}
				for k, v := range over {
					p[k] = v
				}
				return p
			}
			bad := []struct {
				name string
				over map[string]any
				want string
			}{
				{"hostile merge ref", map[string]any{"merge_refs": []string{"feature", "main;id"}}, `invalid git ref "main;id"`},
				{"option merge ref", map[string]any{"merge_refs": []string{"--upload-pack=x"}}, `starts with "-"`},
				{"climbing merge ref", map[string]any{"merge_refs": []string{"../x"}}, `contains ".."`},
				{"merge ref twice", map[string]any{"merge_refs": []string{"a", "a"}}, `lists "a" twice`},
				{"too many merge refs", map[string]any{"merge_refs": strings.Split("a b c d e f g h i j k", " ")}, "11 merge_refs, at most 10"},
				{"tag with unknown placeholder", map[string]any{"git_actions": map[string]any{"tag": "release-{{user}}"}}, "unknown placeholder {{user}}"},
				{"tag with shell", map[string]any{"git_actions": map[string]any{"tag": "r;{{run}}"}}, "is not allowed"},
				{"tag with refs/", map[string]any{"git_actions": map[string]any{"tag": "refs/tags/x"}}, "without refs/"},
				{"hostile branch", map[string]any{"git_actions": map[string]any{"merge_into": "--force"}}, `starts with "-"`},
				{"qualified branch", map[string]any{"git_actions": map[string]any{"merge_into": "refs/heads/master"}}, "must be a branch name"},
				{"unknown mode", map[string]any{"git_actions": map[string]any{"merge_into": "master", "merge_mode": "force"}}, `merge_mode "force"`},
				{"mode without branch", map[string]any{"git_actions": map[string]any{"tag": "v{{run}}", "merge_mode": "merge"}}, "merge_mode needs merge_into"},
				{"unknown field", map[string]any{"git_actions": map[string]any{"force": true}}, "force"},
			}
			for _, tt := range bad {
				var out map[string]any
				if got := e.call("POST", "/api/v1/projects", body(tt.over), &out); got != http.StatusBadRequest {
					t.Errorf("%s: status %d %v, want 400", tt.name, got, out)
					continue
				}
				if msg, _ := out["message"].(string); !strings.Contains(msg, tt.want) {
					t.Errorf("%s: message %q, want it to contain %q", tt.name, msg, tt.want)
				}
			}

			var p ProjectBody
			good := body(map[string]any{"merge_refs": []string{"feature/login", "refs/tags/v1.2"},
				"git_actions": map[string]any{"tag": "release-{{date}}-{{run}}", "merge_into": "master"}})
			if got := e.call("POST", "/api/v1/projects", good, &p); got != http.StatusCreated {
				t.Fatalf("create: %d", got)
			}
			if !slices.Equal(p.MergeRefs, []string{"feature/login", "refs/tags/v1.2"}) || p.GitActions == nil ||
				*p.GitActions != (GitActionsBody{Tag: "release-{{date}}-{{run}}", MergeInto: "master", MergeMode: "ff-only"}) {
				t.Fatalf("created project: merge_refs %q git_actions %+v", p.MergeRefs, p.GitActions)
			}
			var row struct{ MergeRefs, GitActions string }
			if err := e.db.Table("projects").Select("merge_refs, git_actions").Where("id = ?", p.ID).Scan(&row).Error; err != nil {
				t.Fatal(err)
			}
			if row.MergeRefs != `["feature/login","refs/tags/v1.2"]` || row.GitActions != `{"tag":"release-{{date}}-{{run}}","merge_into":"master","merge_mode":"ff-only"}` {
				t.Errorf("stored merge_refs %s git_actions %s", row.MergeRefs, row.GitActions)
			}

			// PUT with the fields left out switches both off.
			var put ProjectBody
			if got := e.call("PUT", "/api/v1/projects/"+p.ID, body(nil), &put); got != http.StatusOK {
				t.Fatalf("update: %d", got)
			}
			if len(put.MergeRefs) != 0 || put.GitActions != nil {
				t.Errorf("after PUT without git settings: merge_refs %q git_actions %+v", put.MergeRefs, put.GitActions)
			}
		})
	}
}

// GET /runs/:id/git shows what a run merged and what its git actions did; a run with
// neither gets empty lists, and an unknown run is 404.
func TestRunGitInfo(t *testing.T) {
	e := newEnv(t, store.SQLite)
	var p ProjectBody
	shop := map[string]any{"name": "shop", "git_url": "https://gitlab.example.com/web/shop.git", "type": "static", "branch": "main", "deploy_path": "/srv/shop"}
	if got := e.call("POST", "/api/v1/projects", shop, &p); got != http.StatusCreated {
		t.Fatalf("create project: %d", got)
	}
	now := time.Now().UTC()
	for _, id := range []string{"r1", "r2"} {
		if err := e.db.Exec(`INSERT INTO runs (id, project_id, ref, status, created_at, updated_at) VALUES (?, ?, 'main', 'succeeded', ?, ?)`, id, p.ID, now, now).Error; err != nil {
			t.Fatal(err)
		}
	}
	base, merged := strings.Repeat("a", 40), strings.Repeat("b", 40)
	err := e.db.Exec(`INSERT INTO run_git (run_id, base_commit, merged_commit, merged_refs, actions_state, actions, updated_at) VALUES ('r1', ?, ?, ?, 'warning', ?, ?)`,
		base, merged, `[{"ref":"feature","commit":"`+strings.Repeat("c", 40)+`","result":"merged"}]`,
		`[{"action":"merge","target":"master","outcome":"warning","message":"not a fast-forward"}]`, now).Error
	if err != nil {
		t.Fatal(err)
	}
	var out RunGitBody
	if got := e.call("GET", "/api/v1/runs/r1/git", nil, &out); got != http.StatusOK {
		t.Fatalf("GET r1/git: %d", got)
	}
	var action struct{ Outcome, Message string }
	if len(out.Actions) == 1 {
		if err := json.Unmarshal(out.Actions[0], &action); err != nil {
			t.Fatal(err)
		}
	}
	if out.BaseCommit != base || out.MergedCommit != merged || len(out.MergedRefs) != 1 || out.ActionsState != "warning" || action.Message != "not a fast-forward" {
		t.Errorf("r1 git = %+v (action %+v)", out, action)
	}
	var empty map[string]any
	if got := e.call("GET", "/api/v1/runs/r2/git", nil, &empty); got != http.StatusOK || len(empty["merged_refs"].([]any)) != 0 || len(empty["actions"].([]any)) != 0 {
		t.Errorf("r2 git = %d %v, want 200 with empty lists", got, empty)
	}
	if got := e.call("GET", "/api/v1/runs/nope/git", nil, nil); got != http.StatusNotFound {
		t.Errorf("unknown run: %d, want 404", got)
	}
}
