package sshx

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"fabu.dev/libs/apperr"
)

// Limits on argument sizes; generous for real paths and names, small enough that a hostile
// value cannot bloat a command line.
const (
	maxPathLen = 4096
	maxNameLen = 255
	maxTextLen = 4096
)

// Quote returns s as one POSIX shell word: wrapped in single quotes, each single quote in s
// closing the quotes, appearing escaped and reopening them:
//
//	Quote("it's") == `'it'\''s'`
//
// Inside single quotes the shell interprets nothing, so the word is s byte for byte. Quote is
// the one quoting function for remote commands.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ValidPath reports whether p is an absolute, normalized path (p == path.Clean(p)) without
// ".." elements, control characters or invalid UTF-8, at most 4096 bytes long. Errors are
// apperr CodeInvalid.
func ValidPath(p string) error {
	switch {
	case p == "":
		return apperr.Invalid("empty path")
	case len(p) > maxPathLen:
		return apperr.Invalid("path longer than %d bytes", maxPathLen)
	case !strings.HasPrefix(p, "/"):
		return apperr.Invalid("path %q is not absolute", p)
	}
	if err := plainText(p); err != nil {
		return apperr.Invalid("path %q: %s", p, err)
	}
	if path.Clean(p) != p {
		return apperr.Invalid("path %q is not normalized (want %q)", p, path.Clean(p))
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return apperr.Invalid("path %q contains ..", p)
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidName reports whether s is a name fit for one path element or word: [A-Za-z0-9._-]+,
// at most 255 bytes, not "." or "..", and not starting with "-" so that it can never be read
// as a command option. Errors are apperr CodeInvalid.
func ValidName(s string) error {
	switch {
	case s == "":
		return apperr.Invalid("empty name")
	case len(s) > maxNameLen:
		return apperr.Invalid("name longer than %d bytes", maxNameLen)
	case !nameRE.MatchString(s):
		return apperr.Invalid("name %q: only letters, digits, '.', '_' and '-' are allowed", s)
	case s == "." || s == "..":
		return apperr.Invalid("name %q is not allowed", s)
	case strings.HasPrefix(s, "-"):
		return apperr.Invalid("name %q must not start with '-'", s)
	}
	return nil
}

// plainText reports why s is not valid UTF-8 free of control characters (NUL, newline,
// escape, C1 controls …), or nil.
func plainText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("control character at byte %d", i)
	}
	return nil
}

// Arg is one validated, quoted argument of a Command. The zero Arg is invalid; make Args with
// PathArg, NameArg, TextArg or ModeArg.
type Arg struct {
	quoted string
	err    error
}

// PathArg is an argument that must pass ValidPath.
func PathArg(p string) Arg { return newArg(p, ValidPath(p)) }

// NameArg is an argument that must pass ValidName.
func NameArg(n string) Arg { return newArg(n, ValidName(n)) }

// TextArg is a free-text argument (a label, a commit subject): valid UTF-8 without control
// characters, at most 4096 bytes. Quoting makes any such value one inert word; use PathArg or
// NameArg whenever the value has a stricter shape.
func TextArg(s string) Arg {
	if len(s) > maxTextLen {
		return Arg{err: apperr.Invalid("text argument longer than %d bytes", maxTextLen)}
	}
	if err := plainText(s); err != nil {
		return Arg{err: apperr.Invalid("text argument %q: %s", s, err)}
	}
	return newArg(s, nil)
}

// ModeArg is a file mode as the octal permission bits chmod takes (e.g. 0640); bits beyond
// the permissions are an error.
func ModeArg(m os.FileMode) Arg {
	if m&^os.ModePerm != 0 {
		return Arg{err: apperr.Invalid("mode %v has bits beyond the permissions", m)}
	}
	return newArg(fmt.Sprintf("%04o", uint32(m)), nil)
}

func newArg(s string, err error) Arg {
	if err != nil {
		return Arg{err: err}
	}
	return Arg{quoted: Quote(s)}
}

// Template is the fixed shell text of a remote command. It is a distinct type so that an
// untyped string constant passes as a Template while a string variable needs a visible
// conversion: data belongs in Args, never in the template. In a template "%s" is the place of
// the next Arg and "%%" is a literal "%"; any other "%" is an error.
type Template string

// Command is a remote shell command: a Template with its Args substituted. Make it with
// NewCommand; the zero Command runs nothing.
type Command struct {
	line string
}

// NewCommand substitutes args, each validated and quoted, into tmpl. An invalid arg, a
// placeholder count that differs from len(args) or a stray "%" is an error (apperr
// CodeInvalid) and no Command is made.
func NewCommand(tmpl Template, args ...Arg) (Command, error) {
	var b strings.Builder
	s, next := string(tmpl), 0
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		verb := byte(0)
		if i+1 < len(s) {
			verb = s[i+1]
		}
		switch verb {
		case '%':
			b.WriteByte('%')
		case 's':
			if next >= len(args) {
				return Command{}, apperr.Invalid("command template %q: more placeholders than %d args", tmpl, len(args))
			}
			a := args[next]
			if a.err != nil {
				return Command{}, fmt.Errorf("command template %q arg %d: %w", tmpl, next+1, a.err)
			}
			if a.quoted == "" {
				return Command{}, apperr.Invalid("command template %q arg %d: zero Arg", tmpl, next+1)
			}
			b.WriteString(a.quoted)
			next++
		default:
			return Command{}, apperr.Invalid("command template %q: stray %% (use %%%% for a literal %%)", tmpl)
		}
		s = s[i+2:]
	}
	if next != len(args) {
		return Command{}, apperr.Invalid("command template %q: %d placeholders for %d args", tmpl, next, len(args))
	}
	if strings.TrimSpace(b.String()) == "" {
		return Command{}, apperr.Invalid("empty command")
	}
	return Command{line: b.String()}, nil
}

// String returns the command line as the remote shell receives it, for logs.
func (c Command) String() string { return c.line }

// IsZero reports whether c is the zero Command.
func (c Command) IsZero() bool { return c.line == "" }
