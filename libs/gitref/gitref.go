// Package gitref validates git ref names and commit ids before any process or shell sees
// them: the rules of `git check-ref-format --branch`, made stricter where a ref could be
// harmful when shown or quoted later.
package gitref

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"fabu.dev/libs/apperr"
)

// maxRefLen bounds a ref name. git itself has no limit; ours keeps refs usable as path
// components and log lines.
const maxRefLen = 1024

// Valid reports whether ref is a valid branch or tag name by the rules of
// `git check-ref-format --branch`, checked in Go so that no process ever sees a bad ref: it
// must not be empty or "HEAD"; must not start with "-" or "/"; must not end with "/" or ".";
// must not contain "..", "//", "@{", ASCII control characters, space or any of ~ ^ : ? * [ \;
// and no "/"-separated component may start with "." or end with ".lock". A name such as
// "refs/heads/main" is accepted as a whole.
//
// It is stricter than git in four ways, so that a ref stays harmless wherever it is shown or
// quoted later: it rejects "@" (a branch name to git, but HEAD to rev-parse), the shell
// metacharacters ; $ ` | & < > ' " ( ) { } ! (git allows "main;id" and "$(id)"), invalid
// UTF-8, and names over 1024 bytes. Non-ASCII UTF-8 names, such as Chinese branch names, are
// accepted as git accepts them. The error is an apperr Invalid error.
func Valid(ref string) error {
	if reason := refProblem(ref); reason != "" {
		return apperr.Invalid("invalid git ref %q: %s", ref, reason)
	}
	return nil
}

// shellMeta are the bytes git allows in ref names that fabu does not.
const shellMeta = ";$`|&<>'\"(){}!"

func refProblem(ref string) string {
	switch {
	case ref == "":
		return "empty"
	case len(ref) > maxRefLen:
		return "too long"
	case ref == "@":
		return `is "@"`
	case ref == "HEAD":
		return `is "HEAD"`
	case ref[0] == '-':
		return `starts with "-"`
	case ref[0] == '/':
		return `starts with "/"`
	case strings.HasSuffix(ref, "/"):
		return `ends with "/"`
	case strings.HasSuffix(ref, "."):
		return `ends with "."`
	case strings.Contains(ref, ".."):
		return `contains ".."`
	case strings.Contains(ref, "//"):
		return `contains "//"`
	case strings.Contains(ref, "@{"):
		return `contains "@{"`
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c < 0x20 || c == 0x7f {
			return "contains a control character"
		}
		if strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return fmt.Sprintf("contains %q", c)
		}
		if strings.IndexByte(shellMeta, c) >= 0 {
			return fmt.Sprintf("contains the shell metacharacter %q", c)
		}
	}
	if !utf8.ValidString(ref) {
		return "is not valid UTF-8"
	}
	for comp := range strings.SplitSeq(ref, "/") {
		if strings.HasPrefix(comp, ".") {
			return `has a component starting with "."`
		}
		if strings.HasSuffix(comp, ".lock") {
			return `has a component ending with ".lock"`
		}
	}
	return ""
}

// ValidCommit reports whether sha looks like a commit id: 7 to 64 hexadecimal digits (an
// abbreviated or full SHA-1 or SHA-256 id). The error is an apperr Invalid error.
func ValidCommit(sha string) error {
	if len(sha) < 7 || len(sha) > 64 || !isHex(sha) {
		return apperr.Invalid("invalid commit id %q: want 7 to 64 hexadecimal digits", sha)
	}
	return nil
}

// IsFullCommit reports whether sha is a complete SHA-1 or SHA-256 object id.
func IsFullCommit(sha string) bool {
	return (len(sha) == 40 || len(sha) == 64) && isHex(sha)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
