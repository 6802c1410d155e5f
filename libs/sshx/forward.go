package sshx

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// DialLoopback opens a TCP connection to port on the target's own loopback
// (127.0.0.1:port as the target sees it), tunnelled through the SSH connection
// (direct-tcpip, which sshd allows unless AllowTcpForwarding is off). A health check
// reaches a service that listens only on the target's loopback this way, with no HTTP
// client needed on the target. Only the loopback is reachable: the tunnel is not a way
// into the target's network. ctx bounds the opening.
func (c *Client) DialLoopback(ctx context.Context, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("dial loopback of %s: port %d is not 1-65535", c.target.label(), port)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)).String()
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := c.conn.Dial("tcp", addr)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("dial %s on %s: %w", addr, c.target.label(), r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		go func() { // the channel open cannot be cancelled; close what it yields
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("dial %s on %s: %w", addr, c.target.label(), ctx.Err())
	}
}
