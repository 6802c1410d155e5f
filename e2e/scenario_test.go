package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/sshx/sshtest"
)

// repo is a bare git repository with a static site under site/, and a clone to push from.
type repo struct {
	t    testing.TB
	bare string
	work string
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	dir := t.TempDir()
	r := &repo{t: t, bare: filepath.Join(dir, "site.git"), work: filepath.Join(dir, "work")}
	git(t, dir, "init", "-q", "--bare", "-b", "main", r.bare)
	git(t, dir, "clone", "-q", r.bare, r.work)
	git(t, r.work, "checkout", "-q", "-b", "main")
	return r
}

// commit writes files (path → content) and pushes a commit to main; it returns its id.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	git(r.t, r.work, "add", "-A")
	git(r.t, r.work, "commit", "-q", "-m", "change site (devops)")
	git(r.t, r.work, "push", "-q", "origin", "main")
	return git(r.t, r.work, "rev-parse", "HEAD")
}

// site returns a static site's files: an index page naming version, and size bytes of
// random assets spread over files.
func site(version string, size int) map[string]string {
	files := map[string]string{
		"site/index.html": "<h1>release " + version + "</h1>\n",
		"README.md":       "not deployed: outside site/\n",
	}
	for i := 0; size > 0; i++ {
		n := min(size, 64<<10)
		b := make([]byte, n/2)
		_, _ = rand.Read(b)
		files["site/assets/blob"+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)})+".txt"] = hex.EncodeToString(b)
		size -= n
	}
	return files
}

// target is a real sshd with a deploy directory.
type target struct {
	sshd *sshtest.Server
	path string
}

func newTarget(t testing.TB) *target {
	t.Helper()
	return &target{sshd: sshtest.Start(t), path: filepath.Join(t.TempDir(), "www", "site")}
}

// current reads a file under the target's current release.
func (tg *target) current(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tg.path, "current", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("read current/%s: %v", name, err)
	}
	return string(b)
}

// currentRelease returns the release id current points at ("" when there is none).
func (tg *target) currentRelease(t testing.TB) string {
	t.Helper()
	dest, err := os.Readlink(filepath.Join(tg.path, "current"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(dest)
}

const webhookSecret = "e2e-webhook-secret-0123456789"

// configure authorizes fabu's deploy key on the target and declares server and project.
func configure(t testing.TB, a *api, tg *target, r *repo, project string) {
	t.Helper()
	var key struct {
		PublicKey string `json:"public_key"`
	}
	waitFor(t, defaultWait, "the deployer's public key", func() (bool, error) {
		status, b := a.do("GET", "/api/v1/ssh/public-key", nil)
		if status != http.StatusOK {
			return false, nil
		}
		return true, json.Unmarshal(b, &key)
	})
	tg.sshd.Authorize(t, key.PublicKey)
	doc := map[string]any{
		"servers": []map[string]any{{"name": "web-1", "host": "127.0.0.1", "port": tg.sshd.Port, "user": "root",
			"host_key": tg.sshd.HostKeyLine}},
		"projects": []map[string]any{{"name": project, "git_url": r.bare, "type": "static", "source_dir": "site",
			"branch": "main", "deploy_path": tg.path, "servers": []string{"web-1"}, "webhook_secret": webhookSecret}},
	}
	a.must(http.StatusOK, "POST", "/api/v1/apply", doc, nil)
}

// gitlabPush is GitLab's push payload from the fixtures, pointed at this repository.
func gitlabPush(t testing.TB, r *repo, before, after string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures(t), "gitlab", "push_hook.go-gitlab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	p["ref"], p["before"], p["after"], p["checkout_sha"] = "refs/heads/main", before, after, after
	// The head commit carries fabu's default trigger keyword, as a developer's would.
	p["commits"] = []map[string]any{{"id": after, "message": "change site (devops)", "title": "change site (devops)",
		"timestamp": "2026-11-25T10:00:00+00:00", "url": "http://example.com/" + after,
		"author": map[string]string{"name": "e2e", "email": "e2e@example.com"}}}
	p["total_commits_count"] = 1
	proj := p["project"].(map[string]any)
	proj["git_http_url"], proj["default_branch"] = r.bare, "main"
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pushHook delivers a GitLab push for commit after and returns the run it started.
func pushHook(t testing.TB, a *api, project string, payload []byte) string {
	t.Helper()
	var out struct {
		Verdict string `json:"verdict"`
		RunID   string `json:"run_id"`
	}
	a.must(http.StatusAccepted, "POST", "/hooks/gitlab/"+project, payload, &out,
		"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", webhookSecret)
	if out.Verdict != "triggered" || out.RunID == "" {
		t.Fatalf("push was not triggered: %+v", out)
	}
	return out.RunID
}
