package sshx_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
	"fabu.dev/libs/sshx/sshtest"
)

// screen collects what a shell's terminal shows.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// openShell starts a shell as root on srv and copies its output to the returned screen.
func openShell(ctx context.Context, t *testing.T, c *sshx.Client, pty sshx.PTY) (*sshx.Shell, *screen) {
	t.Helper()
	sh, err := c.Shell(ctx, pty)
	if err != nil {
		t.Fatalf("Shell: %v", err)
	}
	t.Cleanup(func() { _ = sh.Close() })
	scr := &screen{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sh.Read(buf)
			_, _ = scr.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return sh, scr
}

func typeLine(t *testing.T, sh *sshx.Shell, line string) {
	t.Helper()
	if _, err := sh.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

func waitShown(t *testing.T, scr *screen, want string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("the terminal to show %q (it shows %q)", want, scr.String()), func() bool {
		return strings.Contains(scr.String(), want)
	})
}

func TestShellIsATerminalThatFollowsTheWindow(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	sh, scr := openShell(context.Background(), t, c, sshx.PTY{Rows: 30, Cols: 100})

	// The arithmetic happens on the host, so the marker is only shown by a shell that ran it.
	typeLine(t, sh, `tty >/dev/null && echo "TTY-$((6*7))"; echo "TERM-$TERM"; stty size`)
	waitShown(t, scr, "TTY-42")
	waitShown(t, scr, "TERM-xterm-256color")
	waitShown(t, scr, "30 100")

	if err := sh.Resize(40, 120); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	typeLine(t, sh, `echo "SIZE-$(stty size | tr ' ' x)"`)
	waitShown(t, scr, "SIZE-40x120")

	typeLine(t, sh, "exit 3")
	err := sh.Wait()
	var ee *sshx.ExitError
	if !errors.As(err, &ee) || ee.Status != 3 {
		t.Fatalf("Wait after exit 3 = %v, want an ExitError with status 3", err)
	}
	select {
	case <-sh.Done():
	default:
		t.Error("Done is not closed after Wait returned")
	}
}

func TestShellExitZero(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	sh, _ := openShell(context.Background(), t, c, sshx.PTY{})
	typeLine(t, sh, "exit")
	if err := sh.Wait(); err != nil {
		t.Fatalf("Wait after exit = %v, want nil", err)
	}
}

// TestShellHangUp: closing the shell, or ending its context, ends what runs in it, as
// closing a terminal window does; the connection stays usable.
func TestShellHangUp(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	for _, how := range []string{"Close", "context"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sh, scr := openShell(ctx, t, c, sshx.PTY{})
			pattern := fmt.Sprintf("sleep 4%03d.%d", mrand.IntN(1000), mrand.IntN(1_000_000))
			typeLine(t, sh, "echo started; "+pattern)
			waitShown(t, scr, "started")
			waitFor(t, 10*time.Second, pattern+" to start", func() bool { return running(pattern) })

			if how == "Close" {
				if err := sh.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- sh.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Error("Wait after a hang-up = nil, want an error: the shell did not exit by itself")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return within 10s of the hang-up")
			}
			waitFor(t, 10*time.Second, "remote "+pattern+" to die", func() bool { return !running(pattern) })
			if err := sh.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
	// The client still runs commands after its shells were hung up.
	if err := c.Run(context.Background(), mustCommand(t, "true"), nil, nil, nil); err != nil {
		t.Errorf("Run after the hang-ups: %v", err)
	}
}

func TestShellBadTerminal(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	cases := []struct {
		name string
		pty  sshx.PTY
	}{
		{"shell syntax in the type", sshx.PTY{Term: "xterm;id"}},
		{"command substitution in the type", sshx.PTY{Term: "$(id)"}},
		{"a newline in the type", sshx.PTY{Term: "xterm\nTERM=vt100"}},
		{"a long type", sshx.PTY{Term: strings.Repeat("x", 33)}},
		{"negative rows", sshx.PTY{Rows: -1, Cols: 80}},
		{"huge columns", sshx.PTY{Rows: 24, Cols: 100_000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sh, err := c.Shell(context.Background(), tc.pty)
			if apperr.CodeOf(err) != apperr.CodeInvalid {
				if sh != nil {
					_ = sh.Close()
				}
				t.Fatalf("Shell(%+v) = %v, want an invalid error", tc.pty, err)
			}
		})
	}

	sh, _ := openShell(context.Background(), t, c, sshx.PTY{})
	for _, size := range [][2]int{{0, 80}, {24, 0}, {1001, 80}, {24, -5}} {
		if err := sh.Resize(size[0], size[1]); apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("Resize(%d, %d) = %v, want an invalid error", size[0], size[1], err)
		}
	}
}
