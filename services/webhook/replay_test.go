package webhook

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/store/storetest"
)

// A captured Gitee delivery, its token percent-encoded in any one character (Verify accepts
// the encoded form), is still a replay: it starts nothing, whatever body it carries
// (issue 10 item 8).
func TestGiteeEncodedTokenIsAReplay(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{platform: "gitee", branches: "feat-*"})
			h := giteeHeaders(gitee.EventPushHook, time.Now(), hookSecret)
			first := giteePush(t, "refs/heads/feat-1", "first")
			if status, out := e.post(t, "/hooks/gitee/shop", first, h); status != 202 {
				t.Fatalf("first delivery = %d %v, want 202", status, out)
			}
			token := h["X-Gitee-Token"]
			var variants []string
			for i := 0; i < len(token); i++ {
				variants = append(variants, token[:i]+fmt.Sprintf("%%%02X", token[i])+token[i+1:],
					token[:i]+fmt.Sprintf("%%%02x", token[i])+token[i+1:])
			}
			variants = append(variants, strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(token))
			for i, v := range variants {
				replay := map[string]string{}
				for k, val := range h {
					replay[k] = val
				}
				replay["X-Gitee-Token"] = v
				body := giteePush(t, "refs/heads/feat-1", fmt.Sprintf("replay %d", i))
				status, out := e.post(t, "/hooks/gitee/shop", body, replay)
				if status != 200 || out["verdict"] != VerdictDuplicate {
					t.Fatalf("token %q = %d %v, want 200 duplicate", v, status, out)
				}
			}
			if n := e.count(t, "runs", "1 = 1"); n != 1 {
				t.Errorf("runs = %d, want 1", n)
			}
		})
	}
}

// One event can reach several hooks under one delivery id (GitHub documents it; GitLab's
// event UUID is shared by every hook of one event): each project, an environment, deploys
// it once (issue 10 item 9).
func TestOneDeliveryIDReachesEveryProject(t *testing.T) {
	gh := ghPush(t, "refs/heads/master", "ship")
	gl := push(t, "refs/heads/master", "ship")
	glHeaders := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": hookSecret, "X-Gitlab-Event-UUID": "event-1"}
	tests := []struct {
		name     string
		platform string
		body     []byte
		headers  map[string]string
	}{
		{"github", "github", gh, ghHeaders("push", "guid-1", hookSecret, gh)},
		{"gitlab", "gitlab", gl, glHeaders},
		{"gitee", "gitee", giteePush(t, "refs/heads/master", "ship"), giteeHeaders(gitee.EventPushHook, time.Now(), hookSecret)},
	}
	for _, driver := range storetest.Drivers {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, driver, rules{platform: tt.platform, branches: "master"})
				e.addProject(t, "p2", "shop-prod", rules{platform: tt.platform, branches: "master"})
				for _, name := range []string{"shop", "shop-prod"} {
					if status, out := e.post(t, "/hooks/"+tt.platform+"/"+name, tt.body, tt.headers); status != 202 || out["verdict"] != VerdictTriggered {
						t.Errorf("%s = %d %v, want 202 triggered", name, status, out)
					}
				}
				if status, out := e.post(t, "/hooks/"+tt.platform+"/shop", tt.body, tt.headers); status != 200 || out["verdict"] != VerdictDuplicate {
					t.Errorf("redelivery to shop = %d %v, want 200 duplicate", status, out)
				}
				for _, p := range []string{"p1", "p2"} {
					if n := e.count(t, "runs", "project_id = ?", p); n != 1 {
						t.Errorf("%s has %d runs, want 1", p, n)
					}
				}
			})
		}
	}
}

// Gitee does not sign the body: headers that reached one project, sent to another project
// with the same secret and another body, are a replay, not the same event.
func TestGiteeHeadersReplayedToAnotherProject(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{platform: "gitee", branches: "*"})
			e.addProject(t, "p2", "shop-prod", rules{platform: "gitee", branches: "*"})
			h := giteeHeaders(gitee.EventPushHook, time.Now(), hookSecret)
			if status, out := e.post(t, "/hooks/gitee/shop", giteePush(t, "refs/heads/master", "a"), h); status != 202 {
				t.Fatalf("first = %d %v, want 202", status, out)
			}
			status, out := e.post(t, "/hooks/gitee/shop-prod", giteePush(t, "refs/heads/evil", "b"), h)
			if status != 200 || out["verdict"] != VerdictDuplicate {
				t.Errorf("re-bodied copy to shop-prod = %d %v, want 200 duplicate", status, out)
			}
			if n := e.count(t, "runs", "project_id = ?", "p2"); n != 0 {
				t.Errorf("shop-prod has %d runs, want 0", n)
			}
		})
	}
}

// GitHub signs the body: a push reposted under a fresh X-GitHub-Delivery — one that
// deployed, or one that was ignored before the trigger rules changed — must not deploy an
// old commit (issue 10 item 9).
func TestGitHubRepostUnderFreshGUID(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{platform: "github", branches: "master"})
			deployed := ghPush(t, "refs/heads/master", "old release")
			if status, out := e.post(t, "/hooks/github/shop", deployed, ghHeaders("push", "guid-1", hookSecret, deployed)); status != 202 {
				t.Fatalf("first = %d %v, want 202", status, out)
			}
			ignored := ghPush(t, "refs/heads/develop", "old develop")
			if status, out := e.post(t, "/hooks/github/shop", ignored, ghHeaders("push", "guid-2", hookSecret, ignored)); status != 202 || out["verdict"] != VerdictIgnored {
				t.Fatalf("develop push = %d %v, want 202 ignored", status, out)
			}
			if err := e.db.Exec("UPDATE projects SET trigger_branches = ? WHERE id = ?", "master\ndevelop", "p1").Error; err != nil {
				t.Fatal(err)
			}
			for i, body := range [][]byte{deployed, ignored} {
				status, out := e.post(t, "/hooks/github/shop", body, ghHeaders("push", fmt.Sprintf("fresh-%d", i), hookSecret, body))
				if status != 200 || out["verdict"] != VerdictDuplicate {
					t.Errorf("repost %d = %d %v, want 200 duplicate", i, status, out)
				}
			}
			if n := e.count(t, "runs", "1 = 1"); n != 1 {
				t.Errorf("runs = %d, want 1", n)
			}
		})
	}
}
