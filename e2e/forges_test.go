package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
)

// forgePush is a platform's real push payload from the fixtures, pointed at this repository:
// ref main, before/after as given, and a head commit whose message carries the trigger
// keyword.
func forgePush(t testing.TB, fixture string, r *repo, before, after string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures(t), fixture))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	head := p["head_commit"].(map[string]any)
	head["id"], head["message"] = after, "change site (devops)"
	p["ref"], p["before"], p["after"], p["created"], p["deleted"] = "refs/heads/main", before, after, false, false
	p["commits"] = []any{head}
	if _, ok := p["total_commits_count"]; ok {
		p["total_commits_count"] = 1
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applyForgeProject declares a project whose webhook comes from platform.
func applyForgeProject(t testing.TB, a *api, tg *target, r *repo, name, platform string) {
	t.Helper()
	configure(t, a, tg, r, name)
	doc := map[string]any{"projects": []map[string]any{{"name": name, "git_url": r.bare, "type": "static",
		"source_dir": "site", "branch": "main", "deploy_path": tg.path, "servers": []string{"web-1"},
		"webhook_secret": webhookSecret, "platform": platform}}}
	a.must(http.StatusOK, "POST", "/api/v1/apply", doc, nil)
}

// deliver posts a signed delivery and returns the run it triggered.
func deliver(t testing.TB, a *api, path string, body []byte, headers ...string) string {
	t.Helper()
	var out struct {
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
		RunID   string `json:"run_id"`
	}
	a.must(http.StatusAccepted, "POST", path, body, &out, headers...)
	if out.Verdict != "triggered" {
		t.Fatalf("delivery to %s: %s (%s)", path, out.Verdict, out.Reason)
	}
	return out.RunID
}

// TestSignedGitHubAndGiteePushesDeploy: a GitHub push signed with X-Hub-Signature-256 and a
// Gitee push in signature mode each deploy their project through the six processes, and
// the same deliveries with a forged signature, a stale Gitee timestamp or replayed are refused.
func TestSignedGitHubAndGiteePushesDeploy(t *testing.T) {
	_, a := six(t)
	zero := strings.Repeat("0", 40)

	t.Run("github", func(t *testing.T) {
		r, tg := newRepo(t), newTarget(t)
		commit := r.commit(site("gh", 4<<10))
		applyForgeProject(t, a, tg, r, "gh-site", "github")
		body := forgePush(t, "github/push.go-scm.json", r, zero, commit)
		status, _ := a.do("POST", "/hooks/github/gh-site", body, "X-GitHub-Event", "push",
			"X-GitHub-Delivery", "forged-1", "X-Hub-Signature-256", github.Sign("not-the-secret", body))
		if status != http.StatusUnauthorized {
			t.Errorf("forged signature: status %d, want 401", status)
		}
		id := deliver(t, a, "/hooks/github/gh-site", body, "X-GitHub-Event", "push",
			"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256", github.Sign(webhookSecret, body))
		if got := a.awaitRun(id, defaultWait); got.Status != "succeeded" || got.Commit != commit {
			t.Fatalf("run = %+v\nlog:\n%s", got, a.logText(id))
		}
		if html := tg.current(t, "index.html"); html != "<h1>release gh</h1>\n" {
			t.Errorf("current/index.html = %q", html)
		}
		status, b := a.do("POST", "/hooks/github/gh-site", body, "X-GitHub-Event", "push",
			"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256", github.Sign(webhookSecret, body))
		if status != http.StatusOK || !strings.Contains(string(b), "duplicate") {
			t.Errorf("redelivery: %d %s, want 200 duplicate", status, b)
		}
		ping := []byte(`{"zen":"Design for failure.","hook_id":1}`)
		status, _ = a.do("POST", "/hooks/github/gh-site", ping, "X-GitHub-Event", "ping",
			"X-GitHub-Delivery", "ping-1", "X-Hub-Signature-256", github.Sign(webhookSecret, ping))
		if status != http.StatusOK {
			t.Errorf("ping: status %d, want 200", status)
		}
	})

	t.Run("gitee", func(t *testing.T) {
		r, tg := newRepo(t), newTarget(t)
		commit := r.commit(site("gitee", 4<<10))
		applyForgeProject(t, a, tg, r, "gitee-site", "gitee")
		body := forgePush(t, "gitee/push_hook.go-scm.json", r, zero, commit)
		stale := strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10)
		status, _ := a.do("POST", "/hooks/gitee/gitee-site", body, "X-Gitee-Event", "Push Hook",
			"X-Gitee-Timestamp", stale, "X-Gitee-Token", gitee.Sign(webhookSecret, stale))
		if status != http.StatusUnauthorized {
			t.Errorf("stale timestamp: status %d, want 401", status)
		}
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		id := deliver(t, a, "/hooks/gitee/gitee-site", body, "X-Gitee-Event", "Push Hook",
			"X-Gitee-Timestamp", ts, "X-Gitee-Token", gitee.Sign(webhookSecret, ts))
		if got := a.awaitRun(id, defaultWait); got.Status != "succeeded" || got.Commit != commit {
			t.Fatalf("run = %+v\nlog:\n%s", got, a.logText(id))
		}
		if html := tg.current(t, "index.html"); html != "<h1>release gitee</h1>\n" {
			t.Errorf("current/index.html = %q", html)
		}
		status, b := a.do("POST", "/hooks/gitee/gitee-site", body, "X-Gitee-Event", "Push Hook",
			"X-Gitee-Timestamp", ts, "X-Gitee-Token", gitee.Sign(webhookSecret, ts))
		if status != http.StatusOK || !strings.Contains(string(b), "duplicate") {
			t.Errorf("replayed delivery: %d %s, want 200 duplicate", status, b)
		}
	})
}
