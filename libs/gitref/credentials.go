package gitref

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Credentials in repository URLs. A project's repository URL may carry a user name and a
// password or token (https://user:token@host/group/app.git). The user info must never reach
// git's argv (readable by every local user in /proc) or its config: SplitCredentials gives
// git the URL without it, and the user name and password through GIT_ASKPASS, a fixed
// script in git's private HOME that prints FABU_GIT_USERNAME or FABU_GIT_PASSWORD from git's
// own environment. The script holds no secret; the values exist only in the environment of
// that one git process and its helpers. Every fabu process that runs git against a
// project's URL (the builder's mirror and pushes, ls-remote for release tickets) uses it.

// askpassScript answers git's "Username for …" and "Password for …" prompts.
const askpassScript = `#!/bin/sh
case "$1" in
Username*) printf '%s\n' "$FABU_GIT_USERNAME" ;;
*) printf '%s\n' "$FABU_GIT_PASSWORD" ;;
esac
`

// SplitCredentials removes the user info from an http(s) URL and returns the URL git may
// see and the environment entries that supply the credentials through GIT_ASKPASS (the
// script is written into home, git's private HOME, when missing). Other URLs (ssh,
// scp-like, local paths) pass unchanged with no environment: their user name is no
// secret, and ssh authenticates with keys.
func SplitCredentials(raw, home string) (string, []string, error) {
	lower := strings.ToLower(raw)
	if !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
		return raw, nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("invalid repository URL %s", RedactURL(raw))
	}
	if u.User == nil {
		return raw, nil, nil
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	u.User = nil
	askpass, err := writeAskpass(home)
	if err != nil {
		return "", nil, err
	}
	return u.String(), []string{"GIT_ASKPASS=" + askpass, "FABU_GIT_USERNAME=" + user, "FABU_GIT_PASSWORD=" + pass}, nil
}

// writeAskpass returns the path of the askpass script in home, writing it first if it is
// missing or differs.
func writeAskpass(home string) (string, error) {
	p := filepath.Join(home, "askpass")
	if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, []byte(askpassScript)) {
		return p, nil
	}
	tmp, err := os.CreateTemp(home, ".askpass-*")
	if err != nil {
		return "", fmt.Errorf("write askpass helper: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(askpassScript); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("write askpass helper: %w", err)
	}
	if err := tmp.Chmod(0o700); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("write askpass helper: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write askpass helper: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("write askpass helper: %w", err)
	}
	return p, nil
}

// RedactURL hides the user info of a URL (https://user:token@host/…) for logs and errors.
func RedactURL(raw string) string {
	scheme := strings.Index(raw, "://")
	if scheme < 0 {
		return raw
	}
	rest := raw[scheme+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:scheme+3] + "****" + rest[at:]
}

// SplitUserinfo takes the credentials out of a repository URL: it returns the URL without
// them and the user info as written in it (still percent-encoded). The whole user info of
// an http(s) URL is a credential (a token may stand alone as the user name); in other URLs
// (ssh://git@host/…) the user name is a login, not a secret, and only user info with a
// password is taken out. Any other URL is returned unchanged with "". The rest of the URL is
// kept byte for byte, so JoinUserinfo(SplitUserinfo(raw)) == raw.
func SplitUserinfo(raw string) (bare, userinfo string) {
	scheme := strings.Index(raw, "://")
	if scheme < 0 {
		return raw, ""
	}
	rest := raw[scheme+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at <= 0 {
		return raw, ""
	}
	info := rest[:at]
	httpish := strings.EqualFold(raw[:scheme], "https") || strings.EqualFold(raw[:scheme], "http")
	if !httpish && !strings.Contains(info, ":") {
		return raw, ""
	}
	return raw[:scheme+3] + rest[at+1:], info
}

// JoinUserinfo puts user info taken out by SplitUserinfo back into bare, for the one git
// process that needs it (which gets it through SplitCredentials, never on its argv).
func JoinUserinfo(bare, userinfo string) string {
	scheme := strings.Index(bare, "://")
	if userinfo == "" || scheme < 0 {
		return bare
	}
	return bare[:scheme+3] + userinfo + "@" + bare[scheme+3:]
}

// SameOrigin reports whether two repository URLs (without user info) name the same scheme,
// host and port: credentials stored for one may be sent to the other. Only URLs with a
// scheme and host have an origin.
func SameOrigin(a, b string) bool {
	ua, err := url.Parse(a)
	if err != nil || ua.Host == "" || ua.Scheme == "" {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil || ub.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
