package sshx

import (
	"bytes"
	"io"
	"strconv"
	"sync"
)

// Remote commands are cancelled by killing their process group from a second session.
// The SSH "signal" request cannot be relied on: OpenSSH's sshd ignores it for sessions
// without privilege separation, which includes every root login. So each command runs as
//
//	printf 'fabu-pid:%s\n' "$$" >&2 && exec /bin/sh -c '<command>'
//
// sshd starts every session in a new process session, so the login shell's $$ is the
// process group of the command and everything it starts; Run reads it off stderr before
// passing stderr on. /bin/sh also gives every template the same POSIX shell whatever the
// user's login shell is.

// pidMarker prefixes the line that carries the remote process group ID.
const pidMarker = "fabu-pid:"

// wrap returns the line that runs cmd after reporting its process group on stderr.
func wrap(cmd Command) string {
	return `printf '` + pidMarker + `%s\n' "$$" >&2 && exec /bin/sh -c ` + Quote(cmd.line)
}

// killCommand kills the remote process group pgid.
func killCommand(pgid int) (Command, error) {
	return NewCommand("kill -s KILL -- -%s", NameArg(strconv.Itoa(pgid)))
}

// pidFilter takes the marker line off a session's stderr and passes everything else to w.
// Lines before the marker (a login shell's chatter) pass through too.
type pidFilter struct {
	w     io.Writer
	mu    sync.Mutex
	buf   []byte
	pid   int
	found chan struct{} // closed once pid is known
}

func newPIDFilter(w io.Writer) *pidFilter {
	return &pidFilter{w: w, found: make(chan struct{})}
}

func (f *pidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pid != 0 {
		return f.w.Write(p)
	}
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line, rest := f.buf[:i], f.buf[i+1:]
		if s, ok := bytes.CutPrefix(line, []byte(pidMarker)); ok {
			if pid, err := strconv.Atoi(string(s)); err == nil && pid > 1 {
				f.pid, f.buf = pid, nil
				close(f.found)
				if _, err := f.w.Write(rest); err != nil {
					return len(p), err
				}
				return len(p), nil
			}
		}
		if _, err := f.w.Write(f.buf[:i+1]); err != nil {
			return len(p), err
		}
		f.buf = rest
	}
}

// flush passes on what is held back when the marker never came.
func (f *pidFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		_, _ = f.w.Write(f.buf)
		f.buf = nil
	}
}

// PID returns the remote process group, or 0 while unknown.
func (f *pidFilter) PID() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pid
}
