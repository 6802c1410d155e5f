package sshtest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"fabu.dev/libs/sshx"
	"fabu.dev/libs/sshx/sshtest"
)

func TestStart(t *testing.T) {
	srv := sshtest.Start(t)
	target := srv.Target("root")
	if err := target.Validate(); err != nil {
		t.Fatalf("Target: %v", err)
	}
	pinned, err := sshx.ParseHostKey(srv.HostKeyLine)
	if err != nil {
		t.Fatalf("HostKeyLine %q: %v", srv.HostKeyLine, err)
	}
	if string(pinned.Marshal()) != string(srv.HostKey.Marshal()) {
		t.Errorf("HostKeyLine %q does not hold HostKey", srv.HostKeyLine)
	}
	c, err := sshx.Dial(context.Background(), target, srv.Signer, 5*time.Second)
	if err != nil {
		t.Fatalf("Dial %s: %v", srv.Addr, err)
	}
	_ = c.Close()

	srv.Stop()
	srv.Stop() // idempotent
	if conn, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("%s still accepts connections after Stop", srv.Addr)
	}
}

func TestStartTwice(t *testing.T) {
	a, b := sshtest.Start(t), sshtest.Start(t)
	if a.Addr == b.Addr {
		t.Errorf("two servers share %s", a.Addr)
	}
	if a.HostKeyLine == b.HostKeyLine {
		t.Error("two servers share a host key")
	}
}
