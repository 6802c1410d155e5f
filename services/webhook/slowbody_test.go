package webhook

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/store"
)

// rawPost sends a POST's headers (and prefix of its body) on a bare connection, announcing
// a body of length bytes, and reads the answer without sending the rest. wait bounds how
// long the test waits for an answer: the server must answer without the body, or give up on
// it well before then.
func rawPost(t *testing.T, e *env, path string, headers map[string]string, length int, prefix string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: fabu\r\nContent-Length: %d\r\n", path, length)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n" + prefix)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	const wait = 15 * time.Second
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %s while the body is held back: %v", wait, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode, sb.String()
}

// Where the platform proves the secret in a header (GitLab's token, Gitee's token and
// signed timestamp), a delivery without the proof is refused before its body is read: a
// sender that never sends the body gets its 401 at once (issue 10 item 14).
func TestTokenCheckedBeforeTheBody(t *testing.T) {
	tests := []struct {
		name    string
		rules   rules
		path    string
		headers map[string]string
	}{
		{"gitlab wrong token", rules{}, "/hooks/gitlab/shop", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}},
		{"gitlab no token", rules{}, "/hooks/gitlab/shop", map[string]string{"X-Gitlab-Event": "Push Hook"}},
		{"gitee password mode", rules{platform: "gitee", mode: gitee.ModeNamePassword}, "/hooks/gitee/shop",
			map[string]string{"X-Gitee-Event": gitee.EventPushHook, "X-Gitee-Token": "wrong"}},
		{"gitee signature mode", rules{platform: "gitee"}, "/hooks/gitee/shop",
			giteeHeaders(gitee.EventPushHook, time.Now(), "another secret")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.SQLite, tt.rules)
			status, body := rawPost(t, e, tt.path, tt.headers, 60<<10, "")
			if status != http.StatusUnauthorized {
				t.Errorf("status = %d %s, want 401", status, body)
			}
		})
	}
}

// A body that does not arrive within the body timeout is given up on: a slow sender cannot
// hold a connection (issue 10 item 14). A body larger than the limit announced in
// Content-Length is refused without reading it.
func TestSlowOrLargeBodyIsCutShort(t *testing.T) {
	e := newEnvWith(t, store.SQLite, rules{platform: "github"}, Config{MaxBody: 64 << 10, BodyTimeout: 200 * time.Millisecond})
	body := ghPush(t, "refs/heads/master", "x")
	h := ghHeaders("push", "slow-1", hookSecret, body)
	delete(h, "Content-Type")
	status, out := rawPost(t, e, "/hooks/github/shop", h, len(body), string(body[:10]))
	if status != http.StatusRequestTimeout {
		t.Errorf("slow body: status = %d %s, want 408", status, out)
	}
	status, out = rawPost(t, e, "/hooks/github/shop", h, 1<<30, "")
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("announced 1 GiB: status = %d %s, want 413", status, out)
	}
	status, out = rawPost(t, e, "/trigger/"+strings.Repeat("a", 43), nil, 100, "{")
	if status != http.StatusUnauthorized && status != http.StatusRequestTimeout {
		t.Errorf("trigger with a held-back body: status = %d %s, want 401 or 408", status, out)
	}
	if n := e.count(t, "runs", "1 = 1"); n != 0 {
		t.Errorf("runs = %d, want 0", n)
	}
}
