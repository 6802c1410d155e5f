package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
	"fabu.dev/libs/testenv"
)

// nonUTF8 stands for two bytes that are not UTF-8; the payload helpers put them in raw,
// after encoding, as a platform relaying a hostile ref name byte for byte would.
const nonUTF8 = "NON-UTF8-BYTES"

// loneSurrogate stands for the JSON escape of a lone surrogate, which decodes to no UTF-8.
const loneSurrogate = "LONE-SURROGATE"

// edit decodes fixture file, lets change edit it and encodes it again.
func edit(t testing.TB, file string, change func(p map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, file), &p); err != nil {
		t.Fatal(err)
	}
	change(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(nonUTF8), []byte("\xff\xfe"))
	return bytes.ReplaceAll(b, []byte(loneSurrogate), []byte(`\udc00`))
}

// setHead sets ref and the head commit's message (in head_commit and in commits) of a
// GitHub or Gitee push payload.
func setHead(ref, msg string) func(p map[string]any) {
	return func(p map[string]any) {
		p["ref"] = ref
		if hc, ok := p["head_commit"].(map[string]any); ok {
			hc["message"] = msg
		}
		cs, _ := p["commits"].([]any)
		for _, c := range cs {
			if c := c.(map[string]any); c["id"] == p["after"] {
				c["message"] = msg
			}
		}
	}
}

func ghPush(t testing.TB, ref, msg string) []byte {
	return edit(t, "github/push.go-scm.json", setHead(ref, msg))
}

// ghHeaders are the headers GitHub sends with body for event, signed with secret.
func ghHeaders(event, delivery, secret string, body []byte) map[string]string {
	return map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
		"X-Hub-Signature-256": github.Sign(secret, body), "Content-Type": "application/json"}
}

func giteePush(t testing.TB, ref, msg string) []byte {
	return edit(t, "gitee/push_hook.go-scm.json", setHead(ref, msg))
}

// giteeHeaders are the headers Gitee sends in signature mode for event at time at.
func giteeHeaders(event string, at time.Time, secret string) map[string]string {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	return map[string]string{"X-Gitee-Event": event, "X-Gitee-Timestamp": ts, "X-Gitee-Token": gitee.Sign(secret, ts),
		"Content-Type": "application/json"}
}

// deliveryCase is one delivery to a fresh project and what must come of it: the status,
// one delivery-log entry with the verdict and a reason saying why, and a run only when
// triggered.
type deliveryCase struct {
	name        string
	rules       rules
	path        string
	body        []byte
	headers     map[string]string
	wantStatus  int
	wantVerdict string
	wantReason  string
}

func runDeliveryCases(t *testing.T, tests []deliveryCase) {
	t.Helper()
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					e := newEnv(t, driver, tt.rules)
					status, body := e.post(t, tt.path, tt.body, tt.headers)
					if status != tt.wantStatus {
						t.Fatalf("status = %d %v, want %d", status, body, tt.wantStatus)
					}
					if n := e.count(t, "webhook_deliveries", "verdict = ?", tt.wantVerdict); n != 1 {
						t.Errorf("deliveries with verdict %s = %d, want 1", tt.wantVerdict, n)
					}
					if n := e.count(t, "webhook_deliveries", "1 = 1"); n != 1 {
						t.Errorf("deliveries recorded = %d, want 1", n)
					}
					if r := e.reason(t); !strings.Contains(r, tt.wantReason) {
						t.Errorf("recorded reason %q, want it to contain %q", r, tt.wantReason)
					}
					want := int64(0)
					if tt.wantVerdict == VerdictTriggered {
						want = 1
					}
					runs := e.count(t, "runs", "1 = 1")
					events := e.count(t, "outbox", "topic = ?", "fabu.run.requested.v1")
					if runs != want || events != want {
						t.Errorf("runs = %d, requested events = %d, want %d each", runs, events, want)
					}
				})
			}
		})
	}
}

func TestGitHubDeliveries(t *testing.T) {
	gh := rules{platform: "github", keyword: "devops"}
	good := ghPush(t, "refs/heads/master", "Update README (devops)")
	signed := func(event string, body []byte) map[string]string {
		return ghHeaders(event, "ee8d97b4-1479-43f1-9cac-fbbd1b80da55", hookSecret, body)
	}
	forged := ghHeaders("push", "d1", "another-secret-0123456789", good)
	unsigned := signed("push", good)
	delete(unsigned, "X-Hub-Signature-256")
	sha1Only := signed("push", good)
	delete(sha1Only, "X-Hub-Signature-256")
	sha1Only["X-Hub-Signature"] = "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"
	tampered := signed("push", good)
	tamperedBody := ghPush(t, "refs/heads/master", "Update README (devops) and something else")
	malformed := []byte(`{"ref": "refs/heads/master", "after": `)
	nonUTF := ghPush(t, "refs/heads/"+nonUTF8, "x (devops)")
	hostile := ghPush(t, "refs/heads/$(reboot)", "x (devops)")
	deleted := edit(t, "github/push_branch_delete.go-scm.json", func(map[string]any) {})
	release := testenv.Fixture(t, "github/release_published.go-scm.json")
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	huge := []byte(`{"x":"` + strings.Repeat("a", 70<<10) + `"}`)
	runDeliveryCases(t, []deliveryCase{
		{"signed push with the keyword", gh, "/hooks/github/shop", good, signed("push", good), 202, VerdictTriggered, `contains keyword "devops"`},
		{"keyword missing", gh, "/hooks/github/shop", ghPush(t, "refs/heads/master", "x"), signed("push", ghPush(t, "refs/heads/master", "x")), 202, VerdictIgnored, `lacks keyword "devops"`},
		{"forged signature", gh, "/hooks/github/shop", good, forged, 401, VerdictRejected, "does not match"},
		{"missing signature", gh, "/hooks/github/shop", good, unsigned, 401, VerdictRejected, "does not match"},
		{"SHA-1 signature only", gh, "/hooks/github/shop", good, sha1Only, 401, VerdictRejected, "does not match"},
		{"body changed after signing", gh, "/hooks/github/shop", tamperedBody, tampered, 401, VerdictRejected, "does not match"},
		{"malformed JSON", gh, "/hooks/github/shop", malformed, signed("push", malformed), 400, VerdictRejected, "unreadable delivery"},
		{"non-UTF-8 ref", gh, "/hooks/github/shop", nonUTF, signed("push", nonUTF), 400, VerdictRejected, "ref name refused"},
		{"ref escaping a lone surrogate", gh, "/hooks/github/shop", ghPush(t, "refs/heads/"+loneSurrogate, "x (devops)"), signed("push", ghPush(t, "refs/heads/"+loneSurrogate, "x (devops)")), 400, VerdictRejected, "not UTF-8"},
		{"hostile ref", rules{platform: "github", branches: "*"}, "/hooks/github/shop", hostile, signed("push", hostile), 400, VerdictRejected, "ref name refused"},
		{"branch deleted", gh, "/hooks/github/shop", deleted, signed("push", deleted), 202, VerdictIgnored, "deletions never deploy"},
		{"unknown event", gh, "/hooks/github/shop", release, signed("release", release), 202, VerdictIgnored, `event "release" does not deploy`},
		{"ping", gh, "/hooks/github/shop", ping, signed("ping", ping), 200, VerdictIgnored, "ping"},
		{"body too large", gh, "/hooks/github/shop", huge, signed("push", huge), 413, VerdictRejected, "larger than"},
		{"gitlab token on a github project", gh, "/hooks/github/shop", good, map[string]string{"X-GitHub-Event": "push", "X-Gitlab-Token": hookSecret}, 401, VerdictRejected, "does not match"},
		{"webhook mode github does not have", rules{platform: "github", mode: "password"}, "/hooks/github/shop", good, signed("push", good), 401, VerdictRejected, `mode "password" is not one github hooks have`},
	})
}

func TestGiteeDeliveries(t *testing.T) {
	ge := rules{platform: "gitee", branches: "feat-*", keyword: "devops"}
	now := time.Now()
	good := giteePush(t, "refs/heads/feat-2-1", "feat-2-1 (devops)")
	signed := giteeHeaders(gitee.EventPushHook, now, hookSecret)
	forged := giteeHeaders(gitee.EventPushHook, now, "another-secret-0123456789")
	stale := giteeHeaders(gitee.EventPushHook, now.Add(-61*time.Minute), hookSecret)
	// Far enough ahead to stay outside the window however long the cases before it take.
	future := giteeHeaders(gitee.EventPushHook, now.Add(3*time.Hour), hookSecret)
	noTimestamp := giteeHeaders(gitee.EventPushHook, now, hookSecret)
	delete(noTimestamp, "X-Gitee-Timestamp")
	password := map[string]string{"X-Gitee-Event": gitee.EventPushHook, "X-Gitee-Token": hookSecret,
		"X-Gitee-Timestamp": strconv.FormatInt(now.UnixMilli(), 10)}
	malformed := []byte(`{"ref": "refs/heads/feat-2-1", "after": `)
	nonUTF := giteePush(t, "refs/heads/feat-"+nonUTF8, "x (devops)")
	deleted := testenv.Fixture(t, "gitee/push_hook_branch_deleted.go-scm.json")
	mr := testenv.Fixture(t, "gitee/merge_request_hook_open.go-scm.json")
	ping := giteeHeaders("push_hooks", now, hookSecret)
	ping["X-Gitee-Ping"] = "true"
	pw := rules{platform: "gitee", branches: "feat-*", mode: "password"}
	runDeliveryCases(t, []deliveryCase{
		{"signed push with the keyword", ge, "/hooks/gitee/shop", good, signed, 202, VerdictTriggered, `contains keyword "devops"`},
		{"branch outside the globs", ge, "/hooks/gitee/shop", giteePush(t, "refs/heads/main", "x (devops)"), signed, 202, VerdictIgnored, "matches none of feat-*"},
		{"forged signature", ge, "/hooks/gitee/shop", good, forged, 401, VerdictRejected, "does not match"},
		{"stale timestamp", ge, "/hooks/gitee/shop", good, stale, 401, VerdictRejected, "outside the accepted window"},
		{"timestamp from the future", ge, "/hooks/gitee/shop", good, future, 401, VerdictRejected, "outside the accepted window"},
		{"no timestamp", ge, "/hooks/gitee/shop", good, noTimestamp, 401, VerdictRejected, "does not match"},
		{"password sent to a signature-mode project", ge, "/hooks/gitee/shop", good, password, 401, VerdictRejected, "does not match"},
		{"password mode", pw, "/hooks/gitee/shop", good, password, 202, VerdictTriggered, `matches "feat-*"`},
		{"signature sent to a password-mode project", pw, "/hooks/gitee/shop", good, signed, 401, VerdictRejected, "does not match"},
		{"unknown webhook mode", rules{platform: "gitee", mode: "sometimes"}, "/hooks/gitee/shop", good, signed, 401, VerdictRejected, `"sometimes" is not signature or password`},
		{"malformed JSON", ge, "/hooks/gitee/shop", malformed, signed, 400, VerdictRejected, "unreadable delivery"},
		{"non-UTF-8 ref", ge, "/hooks/gitee/shop", nonUTF, signed, 400, VerdictRejected, "ref name refused"},
		{"ref escaping a lone surrogate", ge, "/hooks/gitee/shop", giteePush(t, "refs/heads/feat-"+loneSurrogate, "x (devops)"), signed, 400, VerdictRejected, "not UTF-8"},
		{"branch deleted", rules{platform: "gitee", branches: "*"}, "/hooks/gitee/shop", deleted, signed, 202, VerdictIgnored, "deletions never deploy"},
		{"unknown event", ge, "/hooks/gitee/shop", mr, giteeHeaders("Merge Request Hook", now, hookSecret), 202, VerdictIgnored, `event "Merge Request Hook" does not deploy`},
		{"ping", ge, "/hooks/gitee/shop", []byte(`{"hook_name":"push_hooks"}`), ping, 200, VerdictIgnored, "ping"},
	})
}

// GitHub signs the body and names each delivery: a redelivery (same X-GitHub-Delivery)
// starts nothing new, and neither does the same signed push under a new delivery id (a
// repost: GitHub never sends one body to one hook twice), while a new push does.
func TestGitHubRedelivery(t *testing.T) {
	e := newEnv(t, store.SQLite, rules{platform: "github"})
	body := ghPush(t, "refs/heads/master", "x")
	if status, out := e.post(t, "/hooks/github/shop", body, ghHeaders("push", "d-1", hookSecret, body)); status != 202 {
		t.Fatalf("first delivery = %d %v", status, out)
	}
	status, out := e.post(t, "/hooks/github/shop", body, ghHeaders("push", "d-1", hookSecret, body))
	if status != 200 || out["verdict"] != VerdictDuplicate {
		t.Fatalf("redelivery = %d %v, want 200 duplicate", status, out)
	}
	if status, out := e.post(t, "/hooks/github/shop", body, ghHeaders("push", "d-2", hookSecret, body)); status != 200 || out["verdict"] != VerdictDuplicate {
		t.Fatalf("the same push under a new delivery id = %d %v, want 200 duplicate", status, out)
	}
	next := ghPush(t, "refs/heads/master", "y")
	if status, _ := e.post(t, "/hooks/github/shop", next, ghHeaders("push", "d-3", hookSecret, next)); status != 202 {
		t.Fatalf("a new push = %d, want 202", status)
	}
	if n := e.count(t, "runs", "1 = 1"); n != 2 {
		t.Errorf("runs = %d, want 2", n)
	}
}

// Gitee signs only the timestamp: headers captured from any verified delivery — a ping, a
// push that did not match, one that deployed — stay valid for an hour with any body. Sent
// again, they start nothing, and the log says why; fresh headers still work.
func TestGiteeReplayedHeadersStartNothing(t *testing.T) {
	ping := []byte(`{"hook_name":"push_hooks"}`)
	deploys := giteePush(t, "refs/heads/feat-2-1", "feat-2-1")
	ignored := giteePush(t, "refs/heads/main", "not a trigger branch")
	tests := []struct {
		name       string
		firstBody  []byte
		first      map[string]string
		wantFirst  int
		replayBody []byte
	}{
		{"after a ping", ping, pingHeaders(), 200, deploys},
		{"after an ignored push", ignored, nil, 202, deploys},
		{"after a deploy", deploys, nil, 202, giteePush(t, "refs/heads/feat-9", "another commit")},
	}
	for _, driver := range storetest.Drivers {
		for _, tt := range tests {
			t.Run(driver+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, driver, rules{platform: "gitee", branches: "feat-*", keyword: ""})
				h := tt.first
				if h == nil {
					h = giteeHeaders(gitee.EventPushHook, time.Now(), hookSecret)
				}
				if status, out := e.post(t, "/hooks/gitee/shop", tt.firstBody, h); status != tt.wantFirst {
					t.Fatalf("first delivery = %d %v, want %d", status, out, tt.wantFirst)
				}
				runsBefore := e.count(t, "runs", "1 = 1")
				replay := map[string]string{}
				for k, v := range h {
					replay[k] = v
				}
				replay["X-Gitee-Event"] = gitee.EventPushHook
				delete(replay, "X-Gitee-Ping")
				status, out := e.post(t, "/hooks/gitee/shop", tt.replayBody, replay)
				if status != 200 || out["verdict"] != VerdictDuplicate {
					t.Fatalf("replayed headers = %d %v, want 200 duplicate", status, out)
				}
				if n := e.count(t, "runs", "1 = 1"); n != runsBefore {
					t.Errorf("runs %d after the replay, %d before", n, runsBefore)
				}
				if r := e.reason(t); !strings.Contains(r, "does not sign the body") {
					t.Errorf("logged reason %q, want it to say why", r)
				}
				fresh := giteeHeaders(gitee.EventPushHook, time.Now().Add(time.Millisecond), hookSecret)
				if status, out := e.post(t, "/hooks/gitee/shop", deploys, fresh); status != 202 || out["verdict"] != VerdictTriggered {
					t.Errorf("a fresh delivery after the replay = %d %v, want 202 triggered", status, out)
				}
			})
		}
	}
}

func pingHeaders() map[string]string {
	h := giteeHeaders("push_hooks", time.Now(), hookSecret)
	h["X-Gitee-Ping"] = "true"
	return h
}

// An environment is a project: shop-test and shop-prod share one repository, each with its
// own hook (so each gets the push) and trigger rules. One push deploys every environment
// whose rules it matches, and the log says for each why it did or did not.
func TestOnePushDeploysSeveralEnvironments(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{platform: "github", branches: "master\ndevelop"}) // "shop": every push to master
			e.addProject(t, "p2", "shop-test", rules{platform: "github", branches: "develop\nmaster", keyword: "devops"})
			e.addProject(t, "p3", "shop-prod", rules{platform: "github", tags: "v*", branches: "release/*"})
			deliveries := 0 // each hook's delivery has its own X-GitHub-Delivery
			send := func(body []byte, event string) map[string]string {
				verdicts := map[string]string{}
				for _, env := range []string{"shop", "shop-test", "shop-prod"} {
					deliveries++
					h := ghHeaders(event, "delivery-"+strconv.Itoa(deliveries), hookSecret, body)
					_, out := e.post(t, "/hooks/github/"+env, body, h)
					verdicts[env] = out["verdict"].(string)
				}
				return verdicts
			}
			tests := []struct {
				name string
				body []byte
				want map[string]string
			}{
				{"push to master with the keyword", ghPush(t, "refs/heads/master", "ship it (devops)"),
					map[string]string{"shop": VerdictTriggered, "shop-test": VerdictTriggered, "shop-prod": VerdictIgnored}},
				{"push to master without it", ghPush(t, "refs/heads/master", "wip"),
					map[string]string{"shop": VerdictTriggered, "shop-test": VerdictIgnored, "shop-prod": VerdictIgnored}},
				{"release branch", ghPush(t, "refs/heads/release/2.0", "2.0"),
					map[string]string{"shop": VerdictIgnored, "shop-test": VerdictIgnored, "shop-prod": VerdictTriggered}},
			}
			for _, tt := range tests {
				got := send(tt.body, "push")
				for env, want := range tt.want {
					if got[env] != want {
						t.Errorf("%s: %s %s, want %s", tt.name, env, got[env], want)
					}
				}
			}
			tag := edit(t, "github/push_tag.go-scm.json", func(p map[string]any) { p["ref"] = "refs/tags/v2.0.1" })
			if got := send(tag, "push"); got["shop-prod"] != VerdictTriggered || got["shop"] != VerdictIgnored || got["shop-test"] != VerdictIgnored {
				t.Errorf("tag v2.0.1: %v, want only shop-prod triggered", got)
			}
			for _, c := range []struct {
				project string
				runs    int64
			}{{"p1", 2}, {"p2", 1}, {"p3", 2}} {
				if n := e.count(t, "runs", "project_id = ?", c.project); n != c.runs {
					t.Errorf("%s has %d runs, want %d", c.project, n, c.runs)
				}
			}
			if n := e.count(t, "webhook_deliveries", "project_id = ? AND verdict = ? AND reason LIKE ?", "p2", VerdictIgnored, `%lacks keyword "devops"%`); n != 1 {
				t.Errorf("shop-test deliveries ignored for the keyword: %d, want 1", n)
			}
		})
	}
}
