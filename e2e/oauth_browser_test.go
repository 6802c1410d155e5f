package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"fabu.dev/services/auth/oauthtest"
)

// TestBrowserOAuth drives "Sign in with GitLab" in Chromium against a real `fabu up` whose
// GitLab and GitHub sign-in point at local stand-ins of those platforms (a GitLab OpenID
// provider with real keys and JWKS, a GitHub OAuth server; services/auth/oauthtest), through
// their Authorize pages: an account no user has linked is refused, the admin links it on the
// Account page, signs out, signs in with GitLab and lands on the page asked for, with no token
// in any URL and the flow cookie gone; then unlinks it (e2e/browser/oauth.test.js). The audit
// log holds each step.
func TestBrowserOAuth(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("browser test packages missing (run `make test-deps` or `cd e2e/browser && npm ci`): %v", err)
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("Chromium missing (apt-get install -y chromium): %v", err)
	}
	gl := oauthtest.NewGitLab("fabu-e2e-gitlab", "gitlab-e2e-secret-0123456789")
	t.Cleanup(gl.Close)
	gh := oauthtest.NewGitHub("fabu-e2e-github", "github-e2e-secret-0123456789")
	t.Cleanup(gh.Close)
	gl.SetAutoApprove(false) // the browser presses Authorize, as on GitLab
	gl.SetUser(oauthtest.User{Subject: "31337", Login: "alice-gl", Name: "Alice", Email: "alice@example.com", EmailVerified: true})
	addr := freeAddr(t)
	gl.RedirectURI = "http://" + addr + "/api/v1/auth/oauth/gitlab/callback"
	gh.RedirectURI = "http://" + addr + "/api/v1/auth/oauth/github/callback"
	p := startFabu(t, "fabu up", addr, []string{"FABU_ADMIN_PASSWORD=" + adminPassword,
		"FABU_OAUTH_GITLAB_URL=" + gl.URL(), "FABU_OAUTH_GITLAB_CLIENT_ID=" + gl.ClientID, "FABU_OAUTH_GITLAB_CLIENT_SECRET=" + gl.ClientSecret,
		"FABU_OAUTH_GITHUB_URL=" + gh.URL(), "FABU_OAUTH_GITHUB_CLIENT_ID=" + gh.ClientID, "FABU_OAUTH_GITHUB_CLIENT_SECRET=" + gh.ClientSecret},
		"up", "--addr", addr, "--data-dir", t.TempDir())

	cmd := exec.Command("node", "--test", "--test-concurrency=1", "oauth.test.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FABU_URL="+p.url, "FABU_USER=admin", "FABU_PASSWORD="+adminPassword,
		"FABU_PROJECT=none", "FABU_OAUTH_GITLAB_LOGIN=alice-gl")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test oauth.test.js:\n%s", out)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}

	a := login(t, p.url, adminPassword)
	var page struct {
		Entries []struct {
			Action, Outcome, Actor, TargetID string
			Detail                           map[string]any
		} `json:"entries"`
	}
	a.must(200, "GET", "/api/v1/audit?action=auth.oauth.&limit=50", nil, &page)
	var got []string
	for i := len(page.Entries) - 1; i >= 0; i-- {
		e := page.Entries[i]
		got = append(got, e.Action+":"+e.Outcome)
		if e.TargetID != "" && e.TargetID != "gitlab:31337" && e.TargetID != "gitlab" && !strings.HasPrefix(e.TargetID, "01") {
			t.Errorf("audit entry %+v names another target", e)
		}
	}
	want := "auth.oauth.login:refused auth.oauth.link:ok auth.oauth.login:ok auth.oauth.unlink:ok"
	if strings.Join(got, " ") != want {
		t.Errorf("audit of the browser's sign-ins = %v\nwant %s", got, want)
	}
	for _, r := range append(gl.Requests(), gh.Requests()...) {
		if strings.Contains(r, "token=") {
			t.Errorf("the provider saw a token in a URL: %s", r)
		}
	}
}
