package workspace

import (
	"strings"

	"fabu.dev/libs/apperr"
)

// validName checks one path component of the workspace layout: [A-Za-z0-9._-]+, not "." or
// "..", and not ending in ".git" or ".lock" so that it can never collide with a mirror or
// its lock file in the directory above.
func validName(kind, s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return apperr.Invalid("invalid %s %q", kind, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-') {
			return apperr.Invalid("invalid %s %q: only A-Z a-z 0-9 . _ - allowed", kind, s)
		}
	}
	if strings.HasSuffix(s, ".git") || strings.HasSuffix(s, ".lock") {
		return apperr.Invalid("invalid %s %q: must not end in .git or .lock", kind, s)
	}
	return nil
}

// validPlatform is validName plus a leading letter or digit, so that a platform can never
// name the workspace's own dot directories (such as the git HOME).
func validPlatform(s string) error {
	if err := validName("platform", s); err != nil {
		return err
	}
	if s[0] == '.' || s[0] == '-' || s[0] == '_' {
		return apperr.Invalid("invalid platform %q: must start with a letter or digit", s)
	}
	return nil
}

// validNamespace checks a namespace whose "/"-separated components (subgroups) are each a
// valid name.
func validNamespace(ns string) error {
	if ns == "" {
		return apperr.Invalid("invalid namespace: empty")
	}
	for comp := range strings.SplitSeq(ns, "/") {
		if err := validName("namespace component", comp); err != nil {
			return err
		}
	}
	return nil
}

// validURL rejects repository URLs that git would read as an option or that select a
// remote helper ("ext::", "fd::" run local commands), and any control character or space.
func validURL(url string) error {
	if url == "" || url[0] == '-' {
		return apperr.Invalid("invalid repository URL: empty or starts with \"-\"")
	}
	for i := 0; i < len(url); i++ {
		if url[i] <= 0x20 || url[i] == 0x7f {
			return apperr.Invalid("invalid repository URL: contains a space or control character")
		}
	}
	if i := strings.Index(url, "::"); i >= 0 && !strings.ContainsAny(url[:i], "/:@") {
		return apperr.Invalid("invalid repository URL: remote helper syntax %q is not allowed", url[:i]+"::")
	}
	return nil
}
