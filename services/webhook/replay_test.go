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
