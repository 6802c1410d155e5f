package webhook

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/forge/gitlab"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/libs/testenv"
)

const hookSecret = "webhook-secret-0123456789"

// fixture returns a GitLab payload from the shared fixtures.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return testenv.Fixture(t, "gitlab/"+name)
}

// push is GitLab's push fixture with its head commit's message set to msg.
func push(t testing.TB, ref, msg string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(fixture(t, "push_hook.go-gitlab.json"), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = ref
	if strings.HasPrefix(ref, "refs/tags/") {
		p["object_kind"], p["event_name"] = "tag_push", "tag_push"
	}
	for _, c := range p["commits"].([]any) {
		c := c.(map[string]any)
		if c["id"] == p["after"] {
			c["message"] = msg
		}
	}
	b, _ := json.Marshal(p)
	return b
}

type env struct {
	svc  *Service
	db   *store.DB
	srv  *httptest.Server
	keys *secret.Keyring
}

// rules are the trigger columns of the test project, its platform (default gitlab) and its
// webhook mode.
type rules struct{ branches, tags, keyword, scope, platform, mode string }

// newEnv serves the webhook service, reading all three platforms, with project p1 "shop"
// set up by r.
func newEnv(t *testing.T, driver string, r rules) *env {
	t.Helper()
	return newEnvWith(t, driver, r, Config{MaxBody: 64 << 10})
}

// newEnvWith is newEnv with the service configured by cfg.
func newEnvWith(t *testing.T, driver string, r rules, cfg Config) *env {
	t.Helper()
	db := storetest.Open(t, driver)
	keys, err := secret.LoadOrCreateFile(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg, db, keys, []forge.Verifier{gitlab.Verifier{}, github.Verifier{}, gitee.Verifier{}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := httpx.NewEngine(log)
	s.Routes(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	env := &env{svc: s, db: db, srv: srv, keys: keys}
	env.addProject(t, "p1", "shop", r)
	return env
}

// addProject inserts project id called name, with webhook secret hookSecret and rules r.
func (e *env) addProject(t *testing.T, id, name string, r rules) {
	t.Helper()
	sealed, err := e.keys.Seal([]byte(hookSecret), secretPlace(id))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if r.scope == "" {
		r.scope = "head"
	}
	if r.platform == "" {
		r.platform = "gitlab"
	}
	err = e.db.Exec(`INSERT INTO projects (id, name, git_url, platform, type, source_dir, branch, deploy_path,
		webhook_secret_sealed, webhook_mode, trigger_branches, trigger_tags, trigger_keyword, trigger_keyword_scope, created_at, updated_at)
		VALUES (?, ?, '/tmp/shop.git', ?, 'static', '.', 'master', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, name, r.platform, "/srv/"+name, sealed, r.mode, r.branches, r.tags, r.keyword, r.scope, now, now).Error
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) post(t *testing.T, path string, body []byte, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(string(body)))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) count(t *testing.T, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.Table(table).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) reason(t *testing.T) string {
	t.Helper()
	var r string
	e.db.Table("webhook_deliveries").Select("reason").Order("received_at DESC").Limit(1).Scan(&r)
	return r
}

func TestGitLabDeliveries(t *testing.T) {
	good := push(t, "refs/heads/master", "fix the cart (devops)")
	deleted := strings.Replace(string(good), `"after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7"`, `"after":"0000000000000000000000000000000000000000"`, 1)
	ok := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}
	with := func(k, v string) map[string]string {
		h := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret}
		h[k] = v
		return h
	}
	runDeliveryCases(t, []deliveryCase{
		{"push with the keyword", rules{keyword: "devops"}, "/hooks/gitlab/shop", good, ok, 202, VerdictTriggered, `contains keyword "devops"`},
		{"keyword missing", rules{keyword: "devops"}, "/hooks/gitlab/shop", push(t, "refs/heads/master", "fix the cart"), ok, 202, VerdictIgnored, `lacks keyword "devops"`},
		{"keyword off", rules{}, "/hooks/gitlab/shop", push(t, "refs/heads/master", "fix the cart"), ok, 202, VerdictTriggered, `matches "master"`},
		{"keyword in any commit", rules{keyword: "hotfix", scope: "any"}, "/hooks/gitlab/shop", good, ok, 202, VerdictIgnored, "none of the pushed commit messages"},
		{"branch glob", rules{branches: "release/*"}, "/hooks/gitlab/shop", push(t, "refs/heads/release/1.2", "x"), ok, 202, VerdictTriggered, `matches "release/*"`},
		{"branch outside the globs", rules{branches: "release/*"}, "/hooks/gitlab/shop", good, ok, 202, VerdictIgnored, "matches none of release/*"},
		{"tag without tag triggers", rules{}, "/hooks/gitlab/shop", push(t, "refs/tags/v1.0", "x"), with("X-Gitlab-Event", "Tag Push Hook"), 202, VerdictIgnored, "tag pushes do not deploy"},
		{"tag trigger", rules{tags: "v*"}, "/hooks/gitlab/shop", push(t, "refs/tags/v1.0", "x"), with("X-Gitlab-Event", "Tag Push Hook"), 202, VerdictTriggered, `matches "v*"`},
		{"wrong token", rules{}, "/hooks/gitlab/shop", good, with("X-Gitlab-Token", "guess"), 401, VerdictRejected, "does not match"},
		{"missing token", rules{}, "/hooks/gitlab/shop", good, map[string]string{"X-Gitlab-Event": "Push Hook"}, 401, VerdictRejected, "does not match"},
		{"unknown project", rules{}, "/hooks/gitlab/nope", good, ok, 404, VerdictRejected, "no such project"},
		{"hostile project name", rules{}, "/hooks/gitlab/a;id", good, ok, 404, VerdictRejected, "no such project"},
		{"wrong platform", rules{}, "/hooks/github/shop", good, ok, 404, VerdictRejected, "takes deliveries from gitlab, not github"},
		{"unknown platform", rules{}, "/hooks/gitea/shop", good, ok, 404, VerdictRejected, "unknown platform"},
		{"malformed JSON", rules{}, "/hooks/gitlab/shop", []byte(`{"object_kind":`), ok, 400, VerdictRejected, "unreadable"},
		{"not a push", rules{}, "/hooks/gitlab/shop", fixture(t, "merge_request_hook_open.go-scm.json"), with("X-Gitlab-Event", "Merge Request Hook"), 202, VerdictIgnored, "does not deploy"},
		{"branch deleted", rules{}, "/hooks/gitlab/shop", []byte(deleted), ok, 202, VerdictIgnored, "deletions never deploy"},
		{"hostile branch", rules{branches: "*"}, "/hooks/gitlab/shop", push(t, "refs/heads/$(id)", "x"), ok, 400, VerdictRejected, "ref name refused"},
		{"body too large", rules{}, "/hooks/gitlab/shop", []byte(`{"x":"` + strings.Repeat("a", 70<<10) + `"}`), ok, 413, VerdictRejected, "larger than"},
	})
}

func TestTriggeredRunIsThePushedCommit(t *testing.T) {
	e := newEnv(t, store.SQLite, rules{keyword: "devops"})
	status, body := e.post(t, "/hooks/gitlab/shop", push(t, "refs/heads/master", "ship it (DevOps)"),
		map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret})
	if status != 202 {
		t.Fatalf("status %d %v", status, body)
	}
	if e.count(t, "runs", "id = ? AND commit_sha = ? AND ref = ? AND status = ? AND trigger = ? AND triggered_by = ?",
		body["run_id"], "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "master", "requested", "webhook:gitlab", "jsmith") != 1 {
		t.Error("the run is not for the pushed commit on master, triggered by the pusher")
	}
	if e.count(t, "webhook_deliveries", "run_id = ? AND ref = ? AND commit_sha = ?", body["run_id"],
		"refs/heads/master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7") != 1 {
		t.Error("the delivery does not record the run, ref and commit")
	}
}

func TestRedeliveryStartsNothingNew(t *testing.T) {
	e := newEnv(t, store.SQLite, rules{})
	h := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret, "Idempotency-Key": "4d0d7a94-0d6f-4b0e"}
	body := push(t, "refs/heads/master", "x")
	if status, _ := e.post(t, "/hooks/gitlab/shop", body, h); status != 202 {
		t.Fatalf("first delivery = %d", status)
	}
	status, out := e.post(t, "/hooks/gitlab/shop", body, h)
	if status != 200 || out["verdict"] != VerdictDuplicate {
		t.Fatalf("redelivery = %d %v, want 200 duplicate", status, out)
	}
	if n := e.count(t, "runs", "1 = 1"); n != 1 {
		t.Errorf("runs = %d, want 1", n)
	}
}

func TestSecretSealedForAnotherProjectDoesNotOpen(t *testing.T) {
	e := newEnv(t, store.SQLite, rules{})
	moved, err := e.keys.Seal([]byte(hookSecret), secretPlace("another-project"))
	if err != nil {
		t.Fatal(err)
	}
	e.db.Exec(`UPDATE projects SET webhook_secret_sealed = ?`, moved)
	status, _ := e.post(t, "/hooks/gitlab/shop", push(t, "refs/heads/master", "x"),
		map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret})
	if status != http.StatusServiceUnavailable || e.count(t, "runs", "1 = 1") != 0 {
		t.Errorf("a secret copied from another row: status %d, want 503 and no run", status)
	}
}

func FuzzDecide(f *testing.F) {
	f.Add("refs/heads/master", "master", strings.Repeat("a", 40), "devops", "fix (devops)")
	f.Add("refs/heads/$(id)", "$(id)", strings.Repeat("b", 40), "", "")
	f.Add("refs/tags/v1", "v1", strings.Repeat("0", 40), "x", "x")
	p := project{ID: "p1", Branch: "master", TriggerBranches: "release/*\nmaster", TriggerTags: "v*", TriggerKeyword: "devops"}
	f.Fuzz(func(t *testing.T, ref, name, after, kw, msg string) {
		p.TriggerKeyword = kw
		kind := forge.Branch
		if strings.HasPrefix(ref, "refs/tags/") {
			kind = forge.Tag
		}
		d := decide(p, &forge.Push{Platform: forge.GitLab, Ref: ref, Kind: kind, Name: name, After: after,
			HeadCommit: &forge.Commit{SHA: after, Message: msg}})
		if d.run == nil {
			if d.verdict.verdict == VerdictTriggered {
				t.Fatal("triggered verdict without a run")
			}
			return
		}
		if !shaPattern.MatchString(d.run.CommitSHA) || d.run.Ref != name || forge.ZeroSHA(after) {
			t.Fatalf("run %+v requested for %q after %q", d.run, name, after)
		}
		if kw != "" && !strings.Contains(strings.ToLower(msg), strings.ToLower(kw)) {
			t.Fatalf("run requested though %q lacks keyword %q", msg, kw)
		}
	})
}

// TestConcurrentCopiesStartOneRun: copies of one delivery sent at the same moment start
// exactly one run; the others are duplicates.
func TestConcurrentCopiesStartOneRun(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			h := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret, "Idempotency-Key": "same-delivery"}
			body := push(t, "refs/heads/master", "x")
			statuses := make(chan int, 8)
			for range 8 {
				go func() {
					status, _ := e.post(t, "/hooks/gitlab/shop", body, h)
					statuses <- status
				}()
			}
			accepted := 0
			for range 8 {
				switch s := <-statuses; s {
				case 202:
					accepted++
				case 200:
				default:
					t.Errorf("status %d, want 202 once and 200 (duplicate) otherwise", s)
				}
			}
			if accepted != 1 || e.count(t, "runs", "1 = 1") != 1 {
				t.Errorf("accepted %d, runs %d; want exactly one", accepted, e.count(t, "runs", "1 = 1"))
			}
		})
	}
}
