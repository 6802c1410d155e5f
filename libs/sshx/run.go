package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
)

// ExitError reports a remote command that ran and did not exit with status 0.
type ExitError struct {
	// Status is the exit status, or -1 when the command died of a signal.
	Status int
	// Signal is the signal that ended the command ("KILL", "TERM" …), if any.
	Signal string
	// Cmd is the command line, as Command.String returns it.
	Cmd string
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("remote command %q killed by signal %s", e.Cmd, e.Signal)
	}
	return fmt.Sprintf("remote command %q exited with status %d", e.Cmd, e.Status)
}

// Run runs cmd in a new session, with stdin as its standard input (nil: empty) and its
// output copied to stdout and stderr (nil: discarded). The command runs under /bin/sh. A
// non-zero exit is an *ExitError. When ctx ends first, the remote process group is killed
// (SIGKILL), the session is closed and Run returns ctx.Err() within a few seconds, even
// when the host no longer answers. After Run returns, stdout and stderr are not written and
// stdin is not read again (a Read already blocked in stdin is the one exception).
func (c *Client) Run(ctx context.Context, cmd Command, stdin io.Reader, stdout, stderr io.Writer) error {
	if cmd.IsZero() {
		return apperr.Invalid("run on %s: empty command", c.target.label())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return apperr.Wrap(err, apperr.CodeUnavailable, "open session on %s", c.target.label())
	}
	defer sess.Close()
	in, out, errOut := &gate{r: stdin}, &gate{w: stdout}, &gate{w: stderr}
	pids := newPIDFilter(errOut)
	sess.Stdin, sess.Stdout, sess.Stderr = in, out, pids
	defer func() { in.shut(); out.shut(); errOut.shut() }()
	if err := sess.Start(wrap(cmd)); err != nil {
		return apperr.Wrap(err, apperr.CodeUnavailable, "start %q on %s", cmd, c.target.label())
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err := <-done:
		pids.flush()
		return c.exitErr(cmd, err)
	case <-ctx.Done():
	}
	out.shut()
	errOut.shut()
	c.kill(sess, pids, done)
	return ctx.Err()
}

// kill ends a cancelled session: it kills the remote process group from a second session,
// then closes this one, giving up after cancelGrace in all.
func (c *Client) kill(sess *ssh.Session, pids *pidFilter, done <-chan error) {
	giveUp := time.After(cancelGrace)
	_ = sess.Signal(ssh.SIGKILL) // enough where sshd honours it (privilege-separated users)
	select {
	case <-pids.found:
	case <-done:
		return
	case <-giveUp:
		_ = sess.Close()
		return
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		cmd, err := killCommand(pids.PID())
		if err != nil {
			return
		}
		ks, err := c.conn.NewSession()
		if err != nil {
			return
		}
		defer ks.Close()
		_ = ks.Run(cmd.String())
	}()
	select {
	case <-killed:
	case <-done:
	case <-giveUp:
	}
	_ = sess.Close()
	select {
	case <-done:
	case <-giveUp:
	}
}

// exitErr turns the result of Session.Wait into Run's error.
func (c *Client) exitErr(cmd Command, err error) error {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		x := &ExitError{Status: ee.ExitStatus(), Signal: ee.Signal(), Cmd: cmd.String()}
		if x.Signal != "" {
			x.Status = -1
		}
		return x
	case errors.As(err, &missing):
		return apperr.Wrap(err, apperr.CodeUnavailable, "run %q on %s: connection lost", cmd, c.target.label())
	default:
		return fmt.Errorf("run %q on %s: %w", cmd, c.target.label(), err)
	}
}

// gate passes writes to w and reads from r until shut, then drops writes and reports EOF,
// so that a cancelled Run does not touch the caller's readers and writers after it
// returned (a Read already blocked in r is the one exception).
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	r      io.Reader
	closed bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.w == nil {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gate) Read(p []byte) (int, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed || g.r == nil {
		return 0, io.EOF
	}
	return g.r.Read(p)
}

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
