package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli runs the fabu binary as a user would: with its own HOME and XDG_CONFIG_HOME, and
// without any FABU_* variable inherited from the test's environment.
type cli struct {
	t    testing.TB
	home string
}

func newCLI(t testing.TB) *cli {
	t.Helper()
	return &cli{t: t, home: t.TempDir()}
}

// result is one finished fabu command.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("fabu %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

func (r result) output() string { return r.stdout + r.stderr }

// cleanEnv is the test's environment without FABU_* variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FABU_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// configDir is where the CLI keeps its saved login.
func (c *cli) configDir() string { return filepath.Join(c.home, "config") }

// run runs `fabu args...` with stdin to completion, within two minutes.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(fabuBin, args...)
	cmd.Env = cleanEnv("HOME="+c.home, "XDG_CONFIG_HOME="+c.configDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start fabu %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		err = <-done
		c.t.Fatalf("fabu %v did not finish within 2m (killed: %v)\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errOut.String())
	}
	r := result{args: args, stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		c.t.Fatalf("fabu %v: %v", args, err)
	}
	return r
}

// mustRun runs fabu and fails the test unless it exits 0.
func (c *cli) mustRun(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("%s", r)
	}
	return r
}

// deployKey returns fabu's deployer public key, once the deployer has published it.
func deployKey(t testing.TB, a *api) string {
	t.Helper()
	var key struct {
		PublicKey string `json:"public_key"`
	}
	waitFor(t, defaultWait, "the deployer's public key", func() (bool, error) {
		status, b := a.do("GET", "/api/v1/ssh/public-key", nil)
		if status != http.StatusOK {
			return false, nil
		}
		if err := json.Unmarshal(b, &key); err != nil {
			return false, fmt.Errorf("decode %s: %w", b, err)
		}
		return key.PublicKey != "", nil
	})
	return key.PublicKey
}

// writeApplyFile writes a fabu.yaml declaring server web-1 at port and project on it.
func writeApplyFile(t testing.TB, dir string, port int, hostKey string, r *repo, project, branch, deployPath string) string {
	t.Helper()
	doc := fmt.Sprintf(`servers:
  - name: web-1
    host: 127.0.0.1
    port: %d
    user: root
    host_key: %q
projects:
  - name: %s
    git_url: %s
    type: static
    source_dir: site
    branch: %s
    deploy_path: %s
    keep_releases: 3
    servers: [web-1]
    webhook_secret: %s
`, port, hostKey, project, r.bare, branch, deployPath, webhookSecret)
	path := filepath.Join(dir, "fabu.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// applied parses `fabu apply` output into "kind name" → action.
func applied(t testing.TB, r result) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("unexpected apply output line %q\n%s", line, r)
		}
		got[f[0]+" "+f[1]] = f[2]
	}
	return got
}

var startedRun = regexp.MustCompile(`Run (\S+) started: `)

// runIDOf returns the run a `fabu deploy` started.
func runIDOf(t testing.TB, r result) string {
	t.Helper()
	m := startedRun.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no \"Run … started\" line\n%s", r)
	}
	return m[1]
}

// TestCLILoginApplyDeploy drives the client commands against `fabu up` and a real sshd:
// login saves a private credentials file, apply is idempotent, deploy --follow streams the
// log and its exit status says how the run ended.
func TestCLILoginApplyDeploy(t *testing.T) {
	p, a := up(t)
	c := newCLI(t)
	r := newRepo(t)
	tg := newTarget(t)
	first := r.commit(site("cli-1", 8<<10))

	// Before login there is nothing to talk to.
	if res := c.run("", "deploy", "cli-site"); res.code == 0 || !strings.Contains(res.stderr, "fabu login") {
		t.Errorf("deploy before login should fail and point at fabu login\n%s", res)
	}

	// A wrong password is refused and saves nothing.
	res := c.run("not-the-password\n", "login", "--server", p.url, "--user", "admin", "--password-stdin")
	if res.code == 0 {
		t.Errorf("login with a wrong password succeeded\n%s", res)
	}
	credPath := filepath.Join(c.configDir(), "fabu", "credentials.json")
	if _, err := os.Stat(credPath); !os.IsNotExist(err) {
		t.Errorf("a failed login left %s (stat: %v)", credPath, err)
	}

	res = c.mustRun(adminPassword+"\n", "login", "--server", p.url+"/", "--user", "admin", "--password-stdin")
	if !strings.Contains(res.stdout, "Logged in to "+p.url) {
		t.Errorf("login output lacks the server\n%s", res)
	}
	fi, err := os.Stat(credPath)
	if err != nil {
		t.Fatalf("credentials file: %v\n%s", err, res)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("credentials file mode = %v, want 0600", mode)
	}
	b, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	var creds struct{ Server, Token string }
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatalf("credentials file %s: %v", b, err)
	}
	if creds.Server != p.url || creds.Token == "" {
		t.Errorf("saved credentials = %+v, want server %s and a token", creds, p.url)
	}
	for _, secret := range []string{adminPassword, creds.Token} {
		if strings.Contains(res.output(), secret) {
			t.Errorf("login printed a secret\n%s", res)
		}
	}
	if bytes.Contains(b, []byte(adminPassword)) {
		t.Error("the password was saved in the credentials file")
	}

	tg.sshd.Authorize(t, deployKey(t, a))
	file := writeApplyFile(t, t.TempDir(), tg.sshd.Port, tg.sshd.HostKeyLine, r, "cli-site", "main", tg.path)
	res = c.mustRun("", "apply", "-f", file)
	want := map[string]string{"server web-1": "created", "project cli-site": "created"}
	if got := applied(t, res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first apply = %v, want %v", got, want)
	}
	res = c.mustRun("", "apply", "-f", file)
	want = map[string]string{"server web-1": "unchanged", "project cli-site": "unchanged"}
	if got := applied(t, res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second apply = %v, want %v", got, want)
	}
	if strings.Contains(res.output(), webhookSecret) {
		t.Errorf("apply printed the webhook secret\n%s", res)
	}

	res = c.mustRun("", "deploy", "cli-site", "--follow")
	id := runIDOf(t, res)
	for _, want := range []string{"fetching", "host key verified", "switched current"} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("deploy --follow output lacks %q\n%s", want, res)
		}
	}
	if !strings.Contains(res.stderr, "Run "+id+" succeeded") {
		t.Errorf("deploy --follow does not say the run succeeded\n%s", res)
	}
	var run runView
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+id, nil, &run)
	if run.Status != "succeeded" || run.Commit != first {
		t.Errorf("run = %+v, want succeeded at %s", run, first)
	}
	if html := tg.current(t, "index.html"); html != "<h1>release cli-1</h1>\n" {
		t.Errorf("current/index.html = %q", html)
	}
	if rel := tg.currentRelease(t); rel != id {
		t.Errorf("current points at %q, want %s", rel, id)
	}

	// rollback --follow puts the release back without building; the new run says whose it is.
	res = c.mustRun("", "rollback", id, "--follow")
	rb := runIDOf(t, res)
	for _, want := range []string{"nothing to build", "switched current back to releases/" + id, "Run " + rb + " succeeded"} {
		if !strings.Contains(res.output(), want) {
			t.Errorf("rollback --follow output lacks %q\n%s", want, res)
		}
	}
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+rb, nil, &run)
	if run.Status != "succeeded" || run.Trigger != "rollback" || run.ReleaseID != id || run.Commit != first {
		t.Errorf("rollback run = %+v, want a succeeded rollback to release %s at %s", run, id, first)
	}
	if rel := tg.currentRelease(t); rel != id {
		t.Errorf("after the rollback current points at %q, want %s", rel, id)
	}

	// A branch that does not exist: the build fails, the CLI says why and exits non-zero.
	file = writeApplyFile(t, t.TempDir(), tg.sshd.Port, tg.sshd.HostKeyLine, r, "cli-site", "no-such-branch", tg.path)
	c.mustRun("", "apply", "-f", file)
	failed := failedDeploy(t, a, c, tg, id, "cli-site", "no-such-branch")

	// A failed run left no release: rollback to it is refused and starts nothing.
	res = c.run("", "rollback", failed, "--follow")
	if res.code == 0 || !strings.Contains(res.stderr, "only a succeeded run can be rolled back to") || strings.Contains(res.stdout, "started") {
		t.Errorf("rollback to a failed run should be refused saying why\n%s", res)
	}

	// The server's port is closed: the deploy fails naming the server, current stays.
	file = writeApplyFile(t, t.TempDir(), closedPort(t), tg.sshd.HostKeyLine, r, "cli-site", "main", tg.path)
	res = c.mustRun("", "apply", "-f", file)
	want = map[string]string{"server web-1": "updated", "project cli-site": "updated"}
	if got := applied(t, res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("apply of the closed port = %v, want %v", got, want)
	}
	failedDeploy(t, a, c, tg, id, "cli-site", "web-1")

	res = c.run("", "deploy", "no-such-project", "--follow")
	if res.code == 0 || !strings.Contains(res.stderr, `no project named "no-such-project"`) {
		t.Errorf("deploy of an unknown project should fail saying so\n%s", res)
	}
	if strings.Contains(res.stdout, "started") {
		t.Errorf("deploy of an unknown project started something\n%s", res)
	}
}

// failedDeploy runs `fabu deploy project --follow`, which must exit non-zero printing the
// run's error (which must mention mention), and leave current at release. It returns the
// failed run's ID.
func failedDeploy(t *testing.T, a *api, c *cli, tg *target, release, project, mention string) string {
	t.Helper()
	res := c.run("", "deploy", project, "--follow")
	if res.code == 0 {
		t.Fatalf("deploy --follow of a failing run exited 0\n%s", res)
	}
	t.Logf("%s", res)
	id := runIDOf(t, res)
	var run runView
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+id, nil, &run)
	if run.Status != "failed" || run.Error == "" {
		t.Fatalf("run = %+v, want failed with an error\n%s", run, res)
	}
	if !strings.Contains(res.stderr, "Run "+id+" failed: "+run.Error) {
		t.Errorf("deploy --follow does not print the run's error %q\n%s", run.Error, res)
	}
	if !strings.Contains(run.Error, mention) {
		t.Errorf("run error %q does not mention %q", run.Error, mention)
	}
	if rel := tg.currentRelease(t); rel != release {
		t.Errorf("after a failed run current points at %q, want %s", rel, release)
	}
	return id
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	addr := freeAddr(t)
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

var generatedPassword = regexp.MustCompile(`Created user admin with password: (\S+)`)

// TestUpGeneratesAdminPasswordOnce starts `fabu up` without FABU_ADMIN_PASSWORD: it prints
// a generated password once, the password works for login (also through the CLI), and a
// restart on the same data directory prints none.
func TestUpGeneratesAdminPasswordOnce(t *testing.T) {
	t.Setenv("FABU_ADMIN_PASSWORD", "") // restored after the test; unset for the processes
	if err := os.Unsetenv("FABU_ADMIN_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	addr := freeAddr(t)
	p := startFabu(t, "fabu up (first start)", addr, nil, "up", "--addr", addr, "--data-dir", data)
	out := p.out.String()
	m := generatedPassword.FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("first start printed %d generated passwords, want 1:\n%s", len(m), out)
	}
	password := m[0][1]
	if len(password) < 16 {
		t.Errorf("generated password %q is short", password)
	}
	login(t, p.url, password)
	c := newCLI(t)
	c.mustRun(password+"\n", "login", "--server", p.url, "--user", "admin", "--password-stdin")
	p.stop(t)

	addr = freeAddr(t)
	p = startFabu(t, "fabu up (restart)", addr, nil, "up", "--addr", addr, "--data-dir", data)
	if out := p.out.String(); strings.Contains(out, "Created user admin") || strings.Contains(out, password) {
		t.Errorf("restart printed a password again:\n%s", out)
	}
	login(t, p.url, password)
}
