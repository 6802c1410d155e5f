package sshx_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
	"fabu.dev/libs/sshx/sshtest"
)

// dial connects to srv as root and closes the client when the test ends.
func dial(t *testing.T, srv *sshtest.Server) *sshx.Client {
	t.Helper()
	c, err := sshx.Dial(context.Background(), srv.Target("root"), srv.Signer, 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustCommand(t *testing.T, tmpl sshx.Template, args ...sshx.Arg) sshx.Command {
	t.Helper()
	cmd, err := sshx.NewCommand(tmpl, args...)
	if err != nil {
		t.Fatalf("NewCommand(%q): %v", tmpl, err)
	}
	return cmd
}

func TestRunOutput(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	var stdout, stderr bytes.Buffer
	cmd := mustCommand(t, "printf %%s %s; printf err >&2", sshx.NameArg("hello"))
	if err := c.Run(context.Background(), cmd, nil, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := stdout.String(); got != "hello" {
		t.Errorf("stdout = %q, want %q", got, "hello")
	}
	if got := stderr.String(); got != "err" {
		t.Errorf("stderr = %q, want %q", got, "err")
	}
}

func TestRunStdin(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	var stdout bytes.Buffer
	if err := c.Run(context.Background(), mustCommand(t, "tr a-z A-Z"), strings.NewReader("shout"), &stdout, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := stdout.String(); got != "SHOUT" {
		t.Errorf("stdout = %q, want %q", got, "SHOUT")
	}
}

func TestRunExitStatus(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	cmd := mustCommand(t, "echo oops >&2; exit 3")
	var stderr bytes.Buffer
	err := c.Run(context.Background(), cmd, nil, nil, &stderr)
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Run error = %v, want *sshx.ExitError", err)
	}
	if ee.Status != 3 || ee.Cmd != cmd.String() {
		t.Errorf("ExitError = %+v, want Status 3, Cmd %q", ee, cmd)
	}
	if got := stderr.String(); got != "oops\n" {
		t.Errorf("stderr = %q, want %q", got, "oops\n")
	}
}

// TestQuoteRemote sends hostile values through the real remote shell and expects them back
// byte for byte, which shows that none of them was interpreted.
func TestQuoteRemote(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	for _, v := range []string{
		"$(id)", "`id`", "main;id", "a'b", "''", `"$HOME"`, `\`, "a b  c", "*", "~root",
		"-n", "%s %d", "x && touch /tmp/pwned", "发布 ünïcødé 🚀", "",
	} {
		var stdout bytes.Buffer
		cmd := mustCommand(t, "printf %%s %s", sshx.TextArg(v))
		if err := c.Run(context.Background(), cmd, nil, &stdout, nil); err != nil {
			t.Fatalf("Run(%s): %v", cmd, err)
		}
		if got := stdout.String(); got != v {
			t.Errorf("printf %%s %s printed %q, want %q", sshx.Quote(v), got, v)
		}
	}
}

func TestDialHostKeyMismatch(t *testing.T) {
	srv := sshtest.Start(t)
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := ssh.NewSignerFromKey(other)
	if err != nil {
		t.Fatal(err)
	}
	target := srv.Target("root")
	target.Name = "web-1"
	target.HostKey = string(ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))

	c, err := sshx.Dial(context.Background(), target, srv.Signer, 5*time.Second)
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial with a wrong pinned key succeeded")
	}
	if code := apperr.CodeOf(err); code != apperr.CodeUnavailable {
		t.Errorf("CodeOf(err) = %q, want %q (err: %v)", code, apperr.CodeUnavailable, err)
	}
	want := fmt.Sprintf("host key mismatch for web-1 (127.0.0.1:%d)", srv.Port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	// The key is checked before authentication, so the server never let the client in.
	if log := srv.Log(); strings.Contains(log, "Accepted publickey") {
		t.Errorf("sshd accepted a login despite the mismatch:\n%s", log)
	}
}

func TestDialPinForms(t *testing.T) {
	srv := sshtest.Start(t)
	bare := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey)))
	for name, pin := range map[string]string{
		"known_hosts with port": srv.HostKeyLine,
		"known_hosts bare host": "127.0.0.1 " + bare,
		"bare key":              bare,
	} {
		t.Run(name, func(t *testing.T) {
			target := srv.Target("root")
			target.HostKey = pin
			c, err := sshx.Dial(context.Background(), target, srv.Signer, 5*time.Second)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			_ = c.Close()
		})
	}
}

func TestDialRefusesWithoutPin(t *testing.T) {
	srv := sshtest.Start(t)
	target := srv.Target("root")
	target.HostKey = ""
	c, err := sshx.Dial(context.Background(), target, srv.Signer, 5*time.Second)
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial without a pinned key succeeded")
	}
	if code := apperr.CodeOf(err); code != apperr.CodeInvalid {
		t.Errorf("CodeOf(err) = %q, want %q (err: %v)", code, apperr.CodeInvalid, err)
	}
}

func TestDialUnreachable(t *testing.T) {
	srv := sshtest.Start(t)
	srv.Stop()
	c, err := sshx.Dial(context.Background(), srv.Target("root"), srv.Signer, 2*time.Second)
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial to a stopped server succeeded")
	}
	if code := apperr.CodeOf(err); code != apperr.CodeUnavailable {
		t.Errorf("CodeOf(err) = %q, want %q (err: %v)", code, apperr.CodeUnavailable, err)
	}
}

// TestRunCancel cancels a long remote command and expects Run to return promptly and the
// remote process to be gone (the server is local, so pgrep sees it).
func TestRunCancel(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	secs := fmt.Sprint(1_000_000 + mrand.IntN(8_000_000))
	pattern := "sleep " + secs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		result <- c.Run(ctx, mustCommand(t, "sleep %s", sshx.NameArg(secs)), nil, nil, nil)
	}()

	waitFor(t, 10*time.Second, "remote "+pattern+" to start", func() bool { return running(pattern) })
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	waitFor(t, 10*time.Second, "remote "+pattern+" to die", func() bool { return !running(pattern) })
}

func running(pattern string) bool {
	return exec.Command("pgrep", "-f", pattern).Run() == nil
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func TestRunZeroCommand(t *testing.T) {
	c := dial(t, sshtest.Start(t))
	if err := c.Run(context.Background(), sshx.Command{}, nil, nil, nil); apperr.CodeOf(err) != apperr.CodeInvalid {
		t.Errorf("Run(zero Command) = %v, want an invalid error", err)
	}
}
