package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/secret"
	"fabu.dev/libs/testenv"
)

// masterKey seals secrets in the six-process setup, where every process needs the same key.
var masterKey = secret.NewKey()

const (
	adminPassword = "e2e-admin-password-0123"
	defaultWait   = 90 * time.Second
)

// up starts `fabu up` on a fresh data directory and signs in.
func up(t testing.TB) (*proc, *api) {
	t.Helper()
	addr := freeAddr(t)
	p := startFabu(t, "fabu up", addr, []string{"FABU_ADMIN_PASSWORD=" + adminPassword},
		"up", "--addr", addr, "--data-dir", t.TempDir(), "--lock-ttl", "6s")
	return p, login(t, p.url, adminPassword)
}

// six starts the six services as six processes against PostgreSQL, Redis and a
// Kafka-protocol broker, and signs in through the gateway.
func six(t testing.TB) (*proc, *api) {
	t.Helper()
	gw, a, _ := sixWith(t, sixOptions{})
	return gw, a
}

// sixOptions vary the six-process setup.
type sixOptions struct {
	// deployerDataDir gives the deployer a --data-dir of its own, as on another machine:
	// artifacts then travel over the builder's signed URLs instead of a shared directory.
	deployerDataDir string
	// procs, when not nil, receives each service's process by name.
	procs map[string]*proc
	// dataDir, when not "", is the data dir of the services (default: a new one).
	dataDir string
}

// sixWith is six with options; it also returns each service's listen address.
func sixWith(t testing.TB, o sixOptions) (*proc, *api, map[string]string) {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	brokers := testenv.Kafka(t)
	testenv.Redis(t) // fails with how to get Redis when it is missing
	redisAddr := testenv.Getenv("FABU_TEST_REDIS", "127.0.0.1:6379")
	data := o.dataDir // builder and deployer share artifacts through it, as on one host
	if data == "" {
		data = t.TempDir()
	}
	common := []string{
		"FABU_POSTGRES=" + dsn, "FABU_KAFKA=" + strings.Join(brokers, ","), "FABU_REDIS=" + redisAddr,
		"FABU_REDIS_PREFIX=" + testenv.RedisPrefix(t), "FABU_DATA_DIR=" + data, "FABU_LOCK_TTL=6s",
		"FABU_ADMIN_PASSWORD=" + adminPassword, "FABU_MASTER_KEY=" + masterKey,
	}
	if st := startOnce(t, common, "migrate", "--status"); !strings.Contains(st, "00001_initial.sql") || !strings.Contains(st, "pending") {
		t.Fatalf("migrate --status on a new database = %q, want the initial migration pending", st)
	}
	if mig := startOnce(t, common, "migrate"); !strings.Contains(mig, "postgres database is up to date") {
		t.Fatalf("migrate = %q", mig)
	}
	if st := startOnce(t, common, "migrate", "--status"); strings.Contains(st, "pending") || !strings.Contains(st, "applied") {
		t.Fatalf("migrate --status after migrate = %q, want all applied", st)
	}
	// A downgrade rolls the newest migrations back; migrating again restores them.
	if down := startOnce(t, common, "migrate", "--down-to", "9"); !strings.Contains(down, "rolled back to migration 00009") {
		t.Fatalf("migrate --down-to 9 = %q", down)
	}
	if st := startOnce(t, common, "migrate", "--status"); !strings.Contains(st, "00010_run_cancel.sql") ||
		!regexp.MustCompile(`00010_run_cancel\.sql\s+pending`).MatchString(st) || !regexp.MustCompile(`00009_roles\.sql\s+applied`).MatchString(st) {
		t.Fatalf("migrate --status after --down-to 9 = %q, want 00010 and later pending, 00009 applied", st)
	}
	if mig := startOnce(t, common, "migrate"); !strings.Contains(mig, "postgres database is up to date") {
		t.Fatalf("migrate after the rollback = %q", mig)
	}
	addrs := map[string]string{}
	for _, s := range []string{"auth", "webhook", "builder", "deployer", "notifier", "gateway"} {
		addrs[s] = freeAddr(t)
	}
	for _, s := range []string{"auth", "webhook", "builder", "deployer", "notifier"} {
		args := []string{"serve", s, "--addr", addrs[s]}
		if s == "deployer" && o.deployerDataDir != "" {
			args = append(args, "--data-dir", o.deployerDataDir)
		}
		p := startFabu(t, s, addrs[s], common, args...)
		if o.procs != nil {
			o.procs[s] = p
		}
	}
	gw := startFabu(t, "gateway", addrs["gateway"], common, "serve", "gateway", "--addr", addrs["gateway"],
		"--auth-url", "http://"+addrs["auth"], "--webhook-url", "http://"+addrs["webhook"])
	if o.procs != nil {
		o.procs["gateway"] = gw
	}
	return gw, login(t, gw.url, adminPassword), addrs
}

// deployByWebhook is the walking skeleton's scenario: a GitLab push for a local bare
// repository ends with that commit's files under current/ on a real sshd target, the run
// succeeded and its log stored; a second push deploys the next commit, and a rollback puts
// the first release back.
func deployByWebhook(t testing.TB, a *api) {
	r := newRepo(t)
	tg := newTarget(t)
	first := r.commit(site("1", 16<<10))
	configure(t, a, tg, r, "shop")

	id := pushHook(t, a, "shop", gitlabPush(t, r, strings.Repeat("0", 40), first))
	got := a.awaitRun(id, defaultWait)
	if got.Status != "succeeded" || got.Commit != first {
		t.Fatalf("run = %+v, want succeeded at %s\nlog:\n%s", got, first, a.logText(id))
	}
	if html := tg.current(t, "index.html"); html != "<h1>release 1</h1>\n" {
		t.Errorf("current/index.html = %q", html)
	}
	if rel := tg.currentRelease(t); rel != id {
		t.Errorf("current points at %q, want release %s", rel, id)
	}
	log := a.logText(id)
	for _, want := range []string{"fetching", "packaged", "host key verified", "switched current"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	second := r.commit(map[string]string{"site/index.html": "<h1>release 2</h1>\n"})
	id2 := pushHook(t, a, "shop", gitlabPush(t, r, first, second))
	if got := a.awaitRun(id2, defaultWait); got.Status != "succeeded" || got.Commit != second {
		t.Fatalf("second run = %+v\nlog:\n%s", got, a.logText(id2))
	}
	if html := tg.current(t, "index.html"); html != "<h1>release 2</h1>\n" {
		t.Errorf("after the second push current/index.html = %q", html)
	}
	if _, err := filepath.Glob(filepath.Join(tg.path, "releases", id)); err != nil {
		t.Error(err)
	}

	// One click back: the first release is still on the target, so current switches back
	// to it without a build or an upload.
	var rb runView
	a.must(http.StatusCreated, "POST", "/api/v1/runs/"+id+"/rollback", nil, &rb)
	if got := a.awaitRun(rb.ID, defaultWait); got.Status != "succeeded" || got.Commit != first || got.ReleaseID != id {
		t.Fatalf("rollback run = %+v, want succeeded with release %s\nlog:\n%s", got, id, a.logText(rb.ID))
	}
	if html := tg.current(t, "index.html"); html != "<h1>release 1</h1>\n" {
		t.Errorf("after the rollback current/index.html = %q", html)
	}
	if rel := tg.currentRelease(t); rel != id {
		t.Errorf("after the rollback current points at %q, want release %s", rel, id)
	}
	if log := a.logText(rb.ID); !strings.Contains(log, "nothing to build") || strings.Contains(log, "packaged") ||
		!strings.Contains(log, "switched current back to releases/"+id) {
		t.Errorf("rollback log:\n%s", log)
	}
}

func TestSixProcessesDeployOnPush(t *testing.T) {
	_, a := six(t)
	deployByWebhook(t, a)

	// The CI trigger URL reaches the webhook process through the gateway, which forwards
	// /trigger to it.
	var projects []struct{ ID, Name string }
	a.must(http.StatusOK, "GET", "/api/v1/projects", nil, &projects)
	var link struct {
		Token string `json:"token"`
		URL   string `json:"url"`
	}
	a.must(http.StatusCreated, "POST", "/api/v1/projects/"+projects[0].ID+"/trigger-token", nil, &link)
	ci := &api{t: t, base: a.base}
	var started struct {
		RunID string `json:"run_id"`
	}
	ci.must(http.StatusAccepted, "POST", "/trigger/"+link.Token, nil, &started)
	if got := a.awaitRun(started.RunID, defaultWait); got.Status != "succeeded" {
		t.Fatalf("run started by the trigger URL = %+v\nlog:\n%s", got, a.logText(started.RunID))
	}
	if status, _ := ci.do("GET", "/trigger/"+link.Token, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET of the trigger URL = %d, want 405 (crawlers never deploy)", status)
	}
}

func TestUpDeploysOnPush(t *testing.T) {
	_, a := up(t)
	deployByWebhook(t, a)
}

// startOnce runs fabu with args to completion and returns its output.
func startOnce(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, err := command(env, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("fabu %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestUnauthenticatedAPIRefused(t *testing.T) {
	p, _ := up(t)
	anon := &api{t: t, base: p.url}
	status, _ := anon.do("GET", "/api/v1/projects", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("GET /projects without a token = %d, want 401", status)
	}
	anon.token = "not-a-token"
	if status, _ := anon.do("GET", "/api/v1/projects", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /projects with a bad token = %d, want 401", status)
	}
	status, _ = anon.do("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": "wrong-password"})
	if status != http.StatusUnauthorized {
		t.Errorf("login with a wrong password = %d, want 401", status)
	}
}
