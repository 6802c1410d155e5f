// Package e2e holds fabu's end-to-end tests: the real fabu binary, started as one process
// (`fabu up`) or as six (`fabu serve <service>`) against PostgreSQL, Redis and a
// Kafka-protocol broker, deploying real git repositories to a real OpenSSH server.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/testenv"
)

// fabuBin is the binary under test: $FABU_BIN, else bin/fabu built by `make build`, else
// one built for this test run.
var fabuBin string

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	fabuBin = os.Getenv("FABU_BIN")
	if fabuBin == "" {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		dir, err := os.MkdirTemp("", "fabu-e2e-bin")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		fabuBin = filepath.Join(dir, "fabu")
		cmd := exec.Command("go", "build", "-o", fabuBin, "./cmd/fabu")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build fabu: %w", err)
		}
	}
	return m.Run(), nil
}

// fixtures is the fixtures directory kept in the repository (testenv.FixturesDir).
func fixtures(t testing.TB) string { return testenv.FixturesDir(t) }

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one running fabu process; its output is kept and shown when the test fails.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startFabu runs `fabu args...` listening on addr and waits until /readyz answers 200.
func startFabu(t testing.TB, name, addr string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(fabuBin, args...)
	// The tests' repositories are bare repositories in temporary directories: allowed as
	// local repositories there (fabu allows none by default); env may say otherwise.
	cmd.Env = append(append(os.Environ(), "FABU_ALLOWED_LOCAL_REPOS="+os.TempDir()), env...)
	p := &proc{name: name, url: "http://" + addr, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, p.out.String())
		}
	})
	waitFor(t, 60*time.Second, name+" ready", func() (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%s exited: %s", name, p.out.String())
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return p
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *proc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api is a small client of a running fabu's HTTP API.
type api struct {
	t     testing.TB
	base  string
	token string
}

// do sends a JSON request and returns the status and body.
func (a *api) do(method, path string, body any, headers ...string) (int, []byte) {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// must sends a request that must answer want, and decodes the answer into out.
func (a *api) must(want int, method, path string, body, out any, headers ...string) {
	a.t.Helper()
	status, b := a.do(method, path, body, headers...)
	if status != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func login(t testing.TB, base, password string) *api {
	t.Helper()
	a := &api{t: t, base: base}
	var out struct {
		Token string `json:"token"`
	}
	a.must(http.StatusOK, "POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": password}, &out)
	a.token = out.Token
	return a
}

// run is the part of a run the tests read.
type runView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Commit   string `json:"commit"`
	Progress int    `json:"progress"`
	Trigger  string `json:"trigger"`
	// ReleaseID is the release live after the run: its own, or a rollback's earlier one.
	ReleaseID string `json:"release_id"`
}

// awaitRun polls run id until it is final.
func (a *api) awaitRun(id string, limit time.Duration) runView {
	a.t.Helper()
	var r runView
	waitFor(a.t, limit, "run "+id+" to finish", func() (bool, error) {
		a.must(http.StatusOK, "GET", "/api/v1/runs/"+id, nil, &r)
		return r.Status == "succeeded" || r.Status == "failed" || r.Status == "cancelled", nil
	})
	return r
}

// logText returns the stored log of run id as text.
func (a *api) logText(id string) string {
	a.t.Helper()
	var page struct {
		Lines []struct {
			N    int    `json:"n"`
			Text string `json:"text"`
		} `json:"lines"`
		Done bool `json:"done"`
	}
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+id+"/logs", nil, &page)
	var b strings.Builder
	for i, l := range page.Lines {
		if l.N != i+1 {
			a.t.Errorf("log line %d is numbered %d", i+1, l.N)
		}
		b.WriteString(l.Text + "\n")
	}
	if !page.Done {
		a.t.Errorf("log of finished run %s is not done", id)
	}
	return b.String()
}
