// Package sshtest runs a real OpenSSH sshd on a loopback port for tests, with a fresh host
// key and a fresh client key in its authorized_keys.
package sshtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"fabu.dev/libs/sshx"
	"fabu.dev/libs/testenv"
)

// SSHDPath is where the OpenSSH server is expected.
const SSHDPath = "/usr/sbin/sshd"

const startTimeout = 10 * time.Second

// Server is a running sshd. It is stopped when the test ends.
type Server struct {
	// Addr is the "127.0.0.1:port" the server listens on.
	Addr string
	// Port is the port of Addr.
	Port int
	// HostKeyLine is the server's host key as a known_hosts line ("[127.0.0.1]:port
	// ssh-ed25519 AAAA…"), fit for Target.HostKey.
	HostKeyLine string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// Signer is the client key the server authorizes, for every user.
	Signer ssh.Signer
	// Dir is the server's temporary directory (config, keys, log).
	Dir string

	cmd     *exec.Cmd
	exited  chan struct{}
	stopped sync.Once
}

// Start runs sshd for the rest of t. It needs root (sshd's privilege separation) and fails t
// with how to install OpenSSH when sshd is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		testenv.Missing(t, "OpenSSH sshd", "install openssh-server (apt-get install -y openssh-server)", err)
	}
	// sshd's privilege separation chroots into /run/sshd and refuses to start without it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshtest: create /run/sshd: %v", err)
	}
	s := &Server{Dir: t.TempDir()}
	s.writeKeys(t)
	// A free port can be taken between probing and sshd binding it; try a few.
	var err error
	for range 3 {
		if err = s.start(t); err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("sshd log:\n%s", s.Log())
				}
				s.Stop()
			})
			return s
		}
	}
	t.Fatalf("sshtest: %v\nsshd log:\n%s", err, s.Log())
	return nil
}

// Target returns a target for user on this server, with the host key pinned.
func (s *Server) Target(user string) sshx.Target {
	return sshx.Target{Name: "sshtest", Host: "127.0.0.1", Port: s.Port, User: user, HostKey: s.HostKeyLine}
}

// Log returns what sshd has logged so far (LogLevel VERBOSE).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
	return string(b)
}

// Stop kills sshd; new connections are refused afterwards. Connections already accepted
// are served by their own processes until the clients close them. Stop is idempotent.
func (s *Server) Stop() {
	s.stopped.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// writeKeys creates the host key, the client key and authorized_keys in s.Dir.
func (s *Server) writeKeys(t testing.TB) {
	t.Helper()
	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "sshtest host")
	if err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	writeFile(t, filepath.Join(s.Dir, "host_ed25519"), pem.EncodeToMemory(block))
	if s.HostKey, err = ssh.NewPublicKey(hostPub); err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: client key: %v", err)
	}
	if s.Signer, err = ssh.NewSignerFromKey(clientPriv); err != nil {
		t.Fatalf("sshtest: client key: %v", err)
	}
	writeFile(t, filepath.Join(s.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(s.Signer.PublicKey()))
}

// start writes the config for a free port, starts sshd and waits until it greets.
func (s *Server) start(t testing.TB) error {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port, s.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.HostKeyLine = knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	config := filepath.Join(s.Dir, "sshd_config")
	writeFile(t, config, []byte(strings.Join([]string{
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(port),
		"HostKey " + filepath.Join(s.Dir, "host_ed25519"),
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"StrictModes no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"LogLevel VERBOSE",
		"",
	}, "\n")))
	logf, err := os.OpenFile(filepath.Join(s.Dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	if err := awaitGreeting(s.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("sshd on %s: %w (exit: %w)", s.Addr, err, waitErr)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// awaitGreeting polls addr until it answers with an SSH banner, sshd exits or the start
// timeout passes.
func awaitGreeting(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return errors.New("sshd exited")
		default:
		}
		if err := greet(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner within %v: %w", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func greet(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}

// Authorize adds an authorized_keys line (another client's public key, such as fabu's
// deployer key) to the server; sshd reads the file at every login.
func (s *Server) Authorize(t testing.TB, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("sshtest: authorize key: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.TrimSpace(line) + "\n"); err != nil {
		t.Fatalf("sshtest: authorize key: %v", err)
	}
}
