package sshx_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
)

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseHostKey(t *testing.T) {
	key := testKey(t)
	bare := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	tests := []struct {
		name, line string
		ok         bool
	}{
		{"known_hosts with port", "[127.0.0.1]:2222 " + bare, true},
		{"known_hosts plain host", "web-1.example.com " + bare, true},
		{"known_hosts several hosts", "web-1,10.0.0.5 " + bare, true},
		{"known_hosts with comment", "web-1 " + bare + " deploy host", true},
		{"bare key", bare, true},
		{"bare key with comment", bare + " root@web-1", true},
		{"surrounding space", "  " + bare + "\n", true},
		{"empty", "", false},
		{"garbage", "not a key", false},
		{"truncated base64", bare[:len(bare)-10], false},
		{"two lines", bare + "\n" + bare, false},
		{"revoked marker", "@revoked * " + bare, false},
		{"cert authority marker", "@cert-authority *.example.com " + bare, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sshx.ParseHostKey(tt.line)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseHostKey(%q) succeeded, want an error", tt.line)
				}
				if apperr.CodeOf(err) != apperr.CodeInvalid {
					t.Errorf("ParseHostKey(%q) code = %q, want invalid", tt.line, apperr.CodeOf(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHostKey(%q): %v", tt.line, err)
			}
			if string(got.Marshal()) != string(key.Marshal()) {
				t.Errorf("ParseHostKey(%q) = %s, want %s", tt.line, ssh.FingerprintSHA256(got), ssh.FingerprintSHA256(key))
			}
		})
	}
}

func TestTargetValidate(t *testing.T) {
	pin := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testKey(t))))
	good := sshx.Target{Name: "web-1", Host: "web-1.example.com", Port: 22, User: "deploy", HostKey: pin}
	tests := []struct {
		name   string
		modify func(*sshx.Target)
		ok     bool
	}{
		{"valid", func(*sshx.Target) {}, true},
		{"IPv4", func(t *sshx.Target) { t.Host = "10.0.0.5" }, true},
		{"IPv6", func(t *sshx.Target) { t.Host = "::1" }, true},
		{"single label", func(t *sshx.Target) { t.Host = "localhost" }, true},
		{"user with dot and dash", func(t *sshx.Target) { t.User = "app.deploy-1" }, true},
		{"port 65535", func(t *sshx.Target) { t.Port = 65535 }, true},
		{"no name", func(t *sshx.Target) { t.Name = "" }, true},
		{"empty host", func(t *sshx.Target) { t.Host = "" }, false},
		{"host with space", func(t *sshx.Target) { t.Host = "web 1" }, false},
		{"host with newline", func(t *sshx.Target) { t.Host = "web\n1" }, false},
		{"host as option", func(t *sshx.Target) { t.Host = "-oProxyCommand=x" }, false},
		{"host with underscore", func(t *sshx.Target) { t.Host = "web_1" }, false},
		{"host with port", func(t *sshx.Target) { t.Host = "web:22" }, false},
		{"host empty label", func(t *sshx.Target) { t.Host = "web..example" }, false},
		{"port 0", func(t *sshx.Target) { t.Port = 0 }, false},
		{"port too big", func(t *sshx.Target) { t.Port = 65536 }, false},
		{"empty user", func(t *sshx.Target) { t.User = "" }, false},
		{"uppercase user", func(t *sshx.Target) { t.User = "Deploy" }, false},
		{"user starting with digit", func(t *sshx.Target) { t.User = "1deploy" }, false},
		{"user with semicolon", func(t *sshx.Target) { t.User = "a;b" }, false},
		{"no host key", func(t *sshx.Target) { t.HostKey = "" }, false},
		{"bad host key", func(t *sshx.Target) { t.HostKey = "ssh-ed25519 nope" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := good
			tt.modify(&target)
			err := target.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", target, err, tt.ok)
			}
			if err != nil && apperr.CodeOf(err) != apperr.CodeInvalid {
				t.Errorf("Validate code = %q, want invalid", apperr.CodeOf(err))
			}
		})
	}
}

func TestTargetAddr(t *testing.T) {
	for _, tt := range []struct {
		host string
		want string
	}{{"web-1", "web-1:22"}, {"::1", "[::1]:22"}} {
		if got := (sshx.Target{Host: tt.host, Port: 22}).Addr(); got != tt.want {
			t.Errorf("Addr() for %q = %q, want %q", tt.host, got, tt.want)
		}
	}
}
