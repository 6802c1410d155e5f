package sshx

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sync"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
)

// PTY describes the pseudo-terminal of an interactive shell.
type PTY struct {
	// Term is the terminal type ($TERM on the host); default "xterm-256color".
	Term string
	// Rows and Cols are the window size in characters; default 24 by 80.
	Rows, Cols int
}

// maxWindow bounds a window side: larger sizes are no terminal anyone uses and only make
// the host allocate more.
const maxWindow = 1000

var termName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$`)

// Normalize fills the zero fields and validates the rest (apperr CodeInvalid). The terminal
// type reaches the host's environment, so it is held to a name's characters.
func (p PTY) Normalize() (PTY, error) {
	if p.Term == "" {
		p.Term = "xterm-256color"
	}
	if p.Rows == 0 {
		p.Rows = 24
	}
	if p.Cols == 0 {
		p.Cols = 80
	}
	if !termName.MatchString(p.Term) {
		return p, apperr.Invalid("terminal type %q: use letters, digits and . _ + - (at most 32)", p.Term)
	}
	if err := validWindow(p.Rows, p.Cols); err != nil {
		return p, err
	}
	return p, nil
}

// validWindow checks a window size; a terminal has at least one row and column.
func validWindow(rows, cols int) error {
	if rows < 1 || rows > maxWindow || cols < 1 || cols > maxWindow {
		return apperr.Invalid("terminal size %dx%d: rows and columns must be from 1 to %d", rows, cols, maxWindow)
	}
	return nil
}

// Shell is an interactive login shell on a pseudo-terminal of the host. Write sends keys
// to it, Read returns what the terminal shows (standard output and error, merged by the
// terminal), Resize follows the window, and Wait returns when the shell has ended.
type Shell struct {
	client *Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader

	done    chan struct{}
	waitErr error
	once    sync.Once
}

// Shell starts the user's login shell on a new pseudo-terminal. The shell ends when it
// exits, when Close hangs up, or when ctx ends (which hangs up too). Nothing of the
// caller's reaches a command line: the host runs the account's own shell.
func (c *Client) Shell(ctx context.Context, pty PTY) (*Shell, error) {
	pty, err := pty.Normalize()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return nil, apperr.Wrap(err, apperr.CodeUnavailable, "open session on %s", c.target.label())
	}
	fail := func(what string, err error) (*Shell, error) {
		_ = sess.Close()
		return nil, apperr.Wrap(err, apperr.CodeUnavailable, "%s on %s", what, c.target.label())
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail("terminal input", err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail("terminal output", err)
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(pty.Term, pty.Rows, pty.Cols, modes); err != nil {
		return fail("request a terminal", err)
	}
	if err := sess.Shell(); err != nil {
		return fail("start a shell", err)
	}
	s := &Shell{client: c, sess: sess, stdin: stdin, stdout: stdout, done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	go func() {
		s.waitErr = s.exitErr(sess.Wait())
		stop()
		close(s.done)
	}()
	return s, nil
}

// Write sends p to the terminal, as if typed.
func (s *Shell) Write(p []byte) (int, error) { return s.stdin.Write(p) }

// Read reads what the terminal shows; it returns io.EOF once the shell has ended and its
// output was read.
func (s *Shell) Read(p []byte) (int, error) { return s.stdout.Read(p) }

// Resize tells the terminal its window is now rows by cols.
func (s *Shell) Resize(rows, cols int) error {
	if err := validWindow(rows, cols); err != nil {
		return err
	}
	if err := s.sess.WindowChange(rows, cols); err != nil {
		return fmt.Errorf("resize terminal on %s: %w", s.client.target.label(), err)
	}
	return nil
}

// Done is closed when the shell has ended.
func (s *Shell) Done() <-chan struct{} { return s.done }

// Wait waits for the shell to end: nil when it exited with status 0, an *ExitError when it
// exited otherwise or died of a signal, CodeUnavailable when the connection was lost or the
// session was hung up before the host reported an exit status.
func (s *Shell) Wait() error {
	<-s.done
	return s.waitErr
}

// Close hangs up: the session's channel closes and sshd sends the shell SIGHUP, as when a
// terminal window is closed. It is idempotent and safe to call at any time.
func (s *Shell) Close() error {
	s.once.Do(func() {
		_ = s.stdin.Close()
		_ = s.sess.Close()
	})
	return nil
}

// exitErr turns the result of Session.Wait into Wait's error.
func (s *Shell) exitErr(err error) error {
	return s.client.exitErr(Command{line: "login shell"}, err)
}
