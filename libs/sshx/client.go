package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
)

const (
	// DefaultDialTimeout bounds connecting and the SSH handshake when Dial gets no timeout.
	DefaultDialTimeout = 15 * time.Second
	// keepaliveInterval is how often an idle connection is probed; a probe unanswered for
	// as long closes the connection, so a dead host fails running commands instead of
	// hanging them.
	keepaliveInterval = 15 * time.Second
	// cancelGrace is how long Run waits for a cancelled session to wind down.
	cancelGrace = 3 * time.Second
)

// Client is an SSH connection to one Target. It is safe for concurrent use; each Run opens
// its own session.
type Client struct {
	target Target
	conn   *ssh.Client
	done   chan struct{}
	once   sync.Once
}

// Dial connects to t, accepts only t's pinned host key and authenticates with signer.
// timeout bounds the TCP connect and the handshake (DefaultDialTimeout when <= 0); ctx can
// end it sooner. An invalid target or a missing pin is apperr CodeInvalid and nothing is
// dialled; a host key mismatch or an unreachable host is apperr CodeUnavailable.
func Dial(ctx context.Context, t Target, signer ssh.Signer, timeout time.Duration) (*Client, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, apperr.Invalid("dial %s: no client key", t.label())
	}
	pinned, err := ParseHostKey(t.HostKey)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var mismatch atomic.Pointer[apperr.Error] // set by the handshake goroutine
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), pinned.Marshal()) {
				return nil
			}
			err := apperr.Unavailable("host key mismatch for %s (%s): got %s %s",
				t.label(), t.Addr(), key.Type(), ssh.FingerprintSHA256(key))
			mismatch.Store(err)
			return err
		},
		Timeout: timeout,
	}

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return nil, unreachable(ctx, t, err)
	}
	// The handshake has no context of its own: a deadline bounds it and closing the
	// connection ends it early when ctx is cancelled.
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, t.Addr(), cfg)
	if !stop() {
		if err == nil {
			_ = sc.Close()
		}
		return nil, unreachable(ctx, t, ctx.Err())
	}
	if err != nil {
		_ = nc.Close()
		if m := mismatch.Load(); m != nil {
			return nil, m
		}
		return nil, unreachable(ctx, t, err)
	}
	_ = nc.SetDeadline(time.Time{})

	c := &Client{target: t, conn: ssh.NewClient(sc, chans, reqs), done: make(chan struct{})}
	go c.keepalive()
	return c, nil
}

// unreachable wraps a connection failure as apperr CodeUnavailable naming the target.
func unreachable(ctx context.Context, t Target, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return apperr.Wrap(err, apperr.CodeUnavailable, "ssh to %s (%s)", t.label(), t.Addr())
}

// hostKeyAlgorithms asks the server for the algorithms of the pinned key, so that a host
// with several keys presents the pinned one rather than failing the pin with another.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}

// keepalive probes the server until Close; an error or a probe unanswered within the
// interval closes the connection.
func (c *Client) keepalive() {
	tick := time.NewTicker(keepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err == nil {
				continue
			}
		case <-time.After(keepaliveInterval):
		}
		_ = c.conn.Close()
		return
	}
}

// Target returns the target c is connected to.
func (c *Client) Target() Target { return c.target }

// Close closes the connection; sessions still running end.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.conn.Close()
	})
	return err
}
