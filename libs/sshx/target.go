package sshx

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/ssh"

	"fabu.dev/libs/apperr"
)

// Target is one host to deploy to: where it is, whom to log in as and the host key it must
// present.
type Target struct {
	// Name identifies the target in messages (the server's configured name); Host is used
	// when it is empty.
	Name string
	// Host is a hostname or an IP address.
	Host string
	// Port is the SSH port, 1–65535.
	Port int
	// User is the login user.
	User string
	// HostKey is the pinned host key as one known_hosts line ("[host]:port ssh-ed25519
	// AAAA…", "host ssh-ed25519 AAAA…") or a bare key ("ssh-ed25519 AAAA…"). Only the key
	// matters; host patterns in the line are not consulted, since the pin belongs to this
	// target.
	HostKey string
}

var (
	userRE  = regexp.MustCompile(`^[a-z_][a-z0-9_.-]*$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)
)

// Validate checks the target's fields, including that a host key is pinned and parses.
// Errors are apperr CodeInvalid.
func (t Target) Validate() error {
	if err := ValidHost(t.Host); err != nil {
		return err
	}
	if t.Port < 1 || t.Port > 65535 {
		return apperr.Invalid("invalid port %d: must be 1-65535", t.Port)
	}
	if len(t.User) > 32 || !userRE.MatchString(t.User) {
		return apperr.Invalid("invalid user %q: must match [a-z_][a-z0-9_.-]*", t.User)
	}
	if strings.TrimSpace(t.HostKey) == "" {
		return apperr.Invalid("no pinned host key for %s: refusing to connect", t.label())
	}
	if _, err := ParseHostKey(t.HostKey); err != nil {
		return err
	}
	return nil
}

// Addr returns "host:port", bracketing IPv6 addresses.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// label is the name the target goes by in messages.
func (t Target) label() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Host
}

// ValidHost reports whether h is an IP address or a DNS hostname (letters, digits, hyphens
// and dots, no label starting or ending with a hyphen). Errors are apperr CodeInvalid.
func ValidHost(h string) error {
	if h == "" {
		return apperr.Invalid("empty host")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 || strings.IndexFunc(h, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return apperr.Invalid("invalid host %q", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) > 63 || !labelRE.MatchString(label) {
			return apperr.Invalid("invalid host %q: not a hostname or IP address", h)
		}
	}
	return nil
}

// ParseHostKey parses a pinned host key: one known_hosts line or a bare authorized_keys
// style key. Marked lines (@revoked, @cert-authority) are rejected, since a pin is one plain
// key. Errors are apperr CodeInvalid.
func ParseHostKey(line string) (ssh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, apperr.Invalid("empty host key")
	}
	if strings.ContainsAny(line, "\n\r") {
		return nil, apperr.Invalid("host key must be one line")
	}
	marker, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
	if err == nil {
		if marker != "" {
			return nil, apperr.Invalid("host key line with marker @%s is not a pin", marker)
		}
		return key, nil
	}
	key, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(line))
	if err2 != nil {
		return nil, apperr.Wrap(fmt.Errorf("%w; as bare key: %w", err, err2), apperr.CodeInvalid,
			"invalid host key: want a known_hosts line or \"<type> <base64>\"")
	}
	return key, nil
}
