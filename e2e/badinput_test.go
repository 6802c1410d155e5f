package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"fabu.dev/libs/sshx/sshtest"
)

func TestBadInputUp(t *testing.T) {
	_, a := up(t)
	badInput(t, a)
}

func TestBadInputSix(t *testing.T) {
	_, a := six(t)
	badInput(t, a)
}

// hostileRefs are branch names git accepts but fabu must never pass on.
var hostileRefs = []string{"main;id", "$(id)", "`id`"}

// badInput checks that hostile or broken input is refused without starting anything, and
// that an unreachable server or a wrong host key fails a run while the target keeps its
// current release.
func badInput(t *testing.T, a *api) {
	r := newRepo(t)
	tg := newTarget(t)
	first := r.commit(site("1", 4<<10))
	configure(t, a, tg, r, "shop")
	id := pushHook(t, a, "shop", gitlabPush(t, r, strings.Repeat("0", 40), first))
	if got := a.awaitRun(id, defaultWait); got.Status != "succeeded" {
		t.Fatalf("first run = %+v\nlog:\n%s", got, a.logText(id))
	}
	release := tg.currentRelease(t)
	projectID := projectIDOf(t, a, "shop")
	before := runIDs(t, a)

	t.Run("webhook token", func(t *testing.T) {
		payload := gitlabPush(t, r, first, first)
		for name, token := range map[string]string{"wrong": "not-" + webhookSecret, "empty": "", "prefix": webhookSecret[:10]} {
			status, b := a.do("POST", "/hooks/gitlab/shop", payload, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", token)
			if status != http.StatusUnauthorized {
				t.Errorf("%s token: status %d %s, want 401", name, status, b)
			}
		}
		noNewRuns(t, a, before)
	})

	t.Run("webhook body too large", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), 30<<20)
		// The size limit is checked before the signature, since GitHub signs the body: an
		// oversized delivery is refused without being read, whatever its token.
		for token, want := range map[string]int{webhookSecret: http.StatusRequestEntityTooLarge, "wrong": http.StatusRequestEntityTooLarge} {
			req, err := http.NewRequest("POST", a.base+"/hooks/gitlab/shop", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Gitlab-Event", "Push Hook")
			req.Header.Set("X-Gitlab-Token", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST 30 MB: %v (want a %d answer)", err, want)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("30 MB delivery with token %q: status %d %s, want %d", token[:5], resp.StatusCode, b, want)
			}
		}
		noNewRuns(t, a, before)
	})

	t.Run("invalid JSON", func(t *testing.T) {
		for _, c := range []struct{ name, method, path, body string }{
			{"apply truncated", "POST", "/api/v1/apply", `{"servers": [`},
			{"apply not an object", "POST", "/api/v1/apply", `[1, 2]`},
			{"apply unknown field", "POST", "/api/v1/apply", `{"servers": [], "projects": [], "clusters": []}`},
			{"apply unknown project field", "POST", "/api/v1/apply",
				`{"servers": [], "projects": [{"name": "shop", "git_url": "x", "type": "static", "branch": "main", "deploy_path": "/srv/x", "servers": [], "build_cmd": "id"}]}`},
			{"server unknown field", "POST", "/api/v1/servers", `{"name": "web-9", "host": "127.0.0.1", "user": "root", "host_key": "x", "password": "p"}`},
			{"server wrong type", "POST", "/api/v1/servers", `{"name": "web-9", "host": "127.0.0.1", "port": "22", "user": "root", "host_key": "x"}`},
			{"project truncated", "PUT", "/api/v1/projects/" + projectID, `{"name": "shop"`},
			{"run unknown field", "POST", "/api/v1/projects/" + projectID + "/runs", `{"ref": "main", "force": true}`},
			{"run trailing data", "POST", "/api/v1/projects/" + projectID + "/runs", `{"ref": "main"} {"ref": "main"}`},
			{"run invalid JSON", "POST", "/api/v1/projects/" + projectID + "/runs", `{ref: main}`},
			{"login invalid JSON", "POST", "/api/v1/auth/login", `{"username": "admin",`},
			{"login unknown field", "POST", "/api/v1/auth/login", `{"username": "admin", "password": "x", "otp": "1"}`},
		} {
			status, b := a.do(c.method, c.path, c.body)
			wantInvalid(t, c.name, status, b)
		}
		noNewRuns(t, a, before)
	})

	t.Run("hostile branch names", func(t *testing.T) {
		for _, ref := range hostileRefs {
			doc := applyDoc(tg, r, tg.sshd.Port, tg.sshd.HostKeyLine, ref)
			status, b := a.do("POST", "/api/v1/apply", doc)
			wantInvalid(t, "apply branch "+ref, status, b)

			status, b = a.do("POST", "/api/v1/projects/"+projectID+"/runs", map[string]string{"ref": ref})
			wantInvalid(t, "run ref "+ref, status, b)

			push := gitlabPushRef(t, r, "refs/heads/"+ref, first)
			status, b = a.do("POST", "/hooks/gitlab/shop", push, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", webhookSecret)
			var v struct {
				Verdict string `json:"verdict"`
				RunID   string `json:"run_id"`
			}
			_ = json.Unmarshal(b, &v)
			t.Logf("push to refs/heads/%s: %d %s", ref, status, b)
			if status >= 500 || v.Verdict == "triggered" || v.RunID != "" {
				t.Errorf("push to refs/heads/%s: status %d %s, want it ignored or refused", ref, status, b)
			}
		}
		var p struct {
			Branch string `json:"branch"`
		}
		a.must(http.StatusOK, "GET", "/api/v1/projects/"+projectID, nil, &p)
		if p.Branch != "main" {
			t.Errorf("after refused applies the project's branch is %q, want main", p.Branch)
		}
		noNewRuns(t, a, before)
	})

	t.Run("host key mismatch", func(t *testing.T) {
		other := sshtest.Start(t)
		// Another server's key, pinned for this server's address.
		line := strings.Fields(tg.sshd.HostKeyLine)[0] + " " + strings.Join(strings.Fields(other.HostKeyLine)[1:], " ")
		a.must(http.StatusOK, "POST", "/api/v1/apply", applyDoc(tg, r, tg.sshd.Port, line, "main"), nil)
		run := startRun(t, a, projectID)
		if run.Status != "failed" || !strings.Contains(run.Error, "host key mismatch") {
			t.Errorf("run = %+v, want failed with a host key mismatch\nlog:\n%s", run, a.logText(run.ID))
		}
		if rel := tg.currentRelease(t); rel != release {
			t.Errorf("after a host key mismatch current points at %q, want %s", rel, release)
		}
	})

	t.Run("unreachable server", func(t *testing.T) {
		a.must(http.StatusOK, "POST", "/api/v1/apply", applyDoc(tg, r, closedPort(t), tg.sshd.HostKeyLine, "main"), nil)
		run := startRun(t, a, projectID)
		if run.Status != "failed" || !strings.Contains(run.Error, "web-1") {
			t.Errorf("run = %+v, want failed naming server web-1\nlog:\n%s", run, a.logText(run.ID))
		}
		if rel := tg.currentRelease(t); rel != release {
			t.Errorf("after an unreachable server current points at %q, want %s", rel, release)
		}
	})

	t.Run("recovers", func(t *testing.T) {
		second := r.commit(map[string]string{"site/index.html": "<h1>release 2</h1>\n"})
		a.must(http.StatusOK, "POST", "/api/v1/apply", applyDoc(tg, r, tg.sshd.Port, tg.sshd.HostKeyLine, "main"), nil)
		run := startRun(t, a, projectID)
		if run.Status != "succeeded" || run.Commit != second {
			t.Fatalf("run after fixing the server = %+v, want succeeded at %s\nlog:\n%s", run, second, a.logText(run.ID))
		}
		if html := tg.current(t, "index.html"); html != "<h1>release 2</h1>\n" {
			t.Errorf("current/index.html = %q", html)
		}
	})

	// No run is left behind in a non-final state.
	var list []runView
	a.must(http.StatusOK, "GET", "/api/v1/runs?limit=100", nil, &list)
	for _, run := range list {
		if !slices.Contains([]string{"succeeded", "failed", "cancelled"}, run.Status) {
			t.Errorf("run %s is still %s", run.ID, run.Status)
		}
	}
}

// applyDoc declares server web-1 on 127.0.0.1:port with hostKey pinned, and project shop
// on branch, deploying to tg.
func applyDoc(tg *target, r *repo, port int, hostKey, branch string) map[string]any {
	return map[string]any{
		"servers": []map[string]any{{"name": "web-1", "host": "127.0.0.1", "port": port, "user": "root", "host_key": hostKey}},
		"projects": []map[string]any{{"name": "shop", "git_url": r.bare, "type": "static", "source_dir": "site",
			"branch": branch, "deploy_path": tg.path, "servers": []string{"web-1"}, "webhook_secret": webhookSecret}},
	}
}

// wantInvalid checks an answer is 400 with a {code: invalid, message} body.
func wantInvalid(t *testing.T, what string, status int, b []byte) {
	t.Helper()
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &e); status != http.StatusBadRequest || err != nil || e.Code != "invalid" || e.Message == "" {
		t.Errorf("%s: %d %s, want 400 with {code: invalid, message}", what, status, b)
	}
}

func projectIDOf(t *testing.T, a *api, name string) string {
	t.Helper()
	var list []struct{ ID, Name string }
	a.must(http.StatusOK, "GET", "/api/v1/projects", nil, &list)
	for _, p := range list {
		if p.Name == name {
			return p.ID
		}
	}
	t.Fatalf("no project %s in %+v", name, list)
	return ""
}

// runIDs lists the IDs of all runs.
func runIDs(t *testing.T, a *api) []string {
	t.Helper()
	var list []runView
	a.must(http.StatusOK, "GET", "/api/v1/runs?limit=100", nil, &list)
	ids := make([]string, len(list))
	for i, r := range list {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	return ids
}

func noNewRuns(t *testing.T, a *api, before []string) {
	t.Helper()
	if now := runIDs(t, a); !slices.Equal(now, before) {
		t.Errorf("runs changed: had %v, now %v", before, now)
	}
}

// startRun requests a run of the project's branch and waits until it is final.
func startRun(t *testing.T, a *api, projectID string) runView {
	t.Helper()
	var run runView
	a.must(http.StatusCreated, "POST", "/api/v1/projects/"+projectID+"/runs", nil, &run)
	return a.awaitRun(run.ID, defaultWait)
}

// gitlabPushRef is a GitLab push of after to ref.
func gitlabPushRef(t *testing.T, r *repo, ref, after string) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(gitlabPush(t, r, strings.Repeat("0", 40), after), &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = ref
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
