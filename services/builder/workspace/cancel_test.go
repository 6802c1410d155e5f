package workspace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && syscall.Kill(pid, 0) == nil
}

// A git that starts a child and waits stands in for git with its remote helper: cancelling
// must kill both, not only the process exec started.
func TestCancelKillsGitsWholeProcessGroup(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	w := &Workspace{
		Base: t.TempDir(),
		Git:  script(t, "sleep 300 &\necho $! >> \"$PIDFILE\"\necho $$ >> \"$PIDFILE\"\nwait\n"),
		Env:  []string{"PIDFILE=" + pids},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.Mirror(ctx, "gitlab", "ns", "app", "https://example.invalid/app.git", nil)
		done <- err
	}()
	var procs []int
	eventually(t, 10*time.Second, "fake git started", func() bool {
		b, _ := os.ReadFile(pids)
		procs = procs[:0]
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				procs = append(procs, pid)
			}
		}
		return len(procs) == 2
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Mirror error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Mirror did not return within 5s of cancellation")
	}
	for _, pid := range procs {
		eventually(t, 5*time.Second, fmt.Sprintf("process %d dead", pid), func() bool { return !alive(pid) })
	}
}

// Real git fetching from a server that accepts and never answers: after cancellation the
// connection must be closed, which proves git's HTTP helper (a grandchild) died too.
func TestCancelStopsRealGitOnHungServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			conns <- c
		}
	}()
	w := &Workspace{Base: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := w.Mirror(ctx, "gitlab", "ns", "app", "http://"+ln.Addr().String()+"/app.git", nil)
		done <- err
	}()
	var conn net.Conn
	select {
	case conn = <-conns:
		defer conn.Close()
	case err := <-done:
		t.Fatalf("Mirror returned before connecting: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("git did not connect within 10s")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Mirror error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Mirror did not return within 5s of cancellation")
	}
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf) // the request, then EOF when the helper dies
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("git's connection still open 5s after cancellation")
		}
		return
	}
}
