// Package cmdline holds fabu's rules for commands and environments that come from data
// (DESIGN.md principle 7: no shell strings from data). Split turns a command string into
// argv the way a shell splits words and refuses everything else a shell would do; Check
// refuses argv that asks a shell to interpret a string; CheckEnvName refuses variables
// fabu sets itself or that change how every program is loaded. The gateway applies them
// when a project is saved and the builder when it reads .fabu.yml, so a pipeline is
// refused at save time by the rules that run it.
package cmdline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// SyntaxError reports a command string that Split refuses. Offset is the byte offset of
// the offending character; Line is its 1-based line within the string, so a caller that
// knows where the string starts in a file can name the file's line.
type SyntaxError struct {
	Offset int
	Line   int
	Reason string
}

func (e *SyntaxError) Error() string { return e.Reason }

// Split splits a command string into argv the way a POSIX shell splits words, without
// anything else a shell does. Single quotes keep everything literal, double quotes keep
// everything but \" \\ \$ \` literal, and a backslash outside quotes escapes the next
// character. Everything that would need a shell to mean what it says is refused instead
// of being passed on literally: pipes, lists (; && ||), background jobs, redirections,
// substitutions ($VAR, ${…}, $(…), backticks), globs, ~ and comments, subshells and
// several lines. Quoting such a character makes it literal, as in a shell.
func Split(s string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quote   byte // 0, '\'' or '"'
		quoteAt int
	)
	fail := func(i int, format string, a ...any) error {
		return &SyntaxError{Offset: i, Line: 1 + strings.Count(s[:i], "\n"), Reason: fmt.Sprintf(format, a...)}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch quote {
		case '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
			continue
		case '"':
			switch c {
			case '"':
				quote = 0
			case '\\':
				if i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						cur.WriteByte(s[i])
					}
				} else {
					cur.WriteByte(c)
				}
			case '$':
				if i+1 < len(s) && isSubstStart(s[i+1]) {
					return nil, fail(i, "%q: variables and command substitution are not expanded; write the value or declare it in env", s[i:i+2])
				}
				cur.WriteByte(c)
			case '`':
				return nil, fail(i, "backticks (command substitution) are not supported")
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\n', '\r':
			return nil, fail(i, "a command must be one line: give each command its own stage")
		case '\'', '"':
			quote, quoteAt, inWord = c, i, true
		case '\\':
			if i+1 >= len(s) {
				return nil, fail(i, "a trailing backslash escapes nothing")
			}
			i++
			if s[i] == '\n' { // line continuation
				continue
			}
			cur.WriteByte(s[i])
			inWord = true
		case '|':
			return nil, fail(i, "%q (pipe) is not supported: commands run without a shell; put the pipeline in a script file and run that", "|")
		case ';':
			return nil, fail(i, "%q is not supported: give each command its own stage", ";")
		case '&':
			if i+1 < len(s) && s[i+1] == '&' {
				return nil, fail(i, "%q is not supported: give each command its own stage", "&&")
			}
			return nil, fail(i, "%q (background job) is not supported", "&")
		case '>', '<':
			return nil, fail(i, "%q (redirection) is not supported: output goes to the run log", string(c))
		case '`':
			return nil, fail(i, "backticks (command substitution) are not supported")
		case '$':
			if i+1 < len(s) && isSubstStart(s[i+1]) {
				return nil, fail(i, "%q: variables and command substitution are not expanded; write the value or declare it in env", s[i:i+2])
			}
			cur.WriteByte(c)
			inWord = true
		case '(', ')':
			return nil, fail(i, "%q (subshell) is not supported", string(c))
		case '*', '?', '[':
			return nil, fail(i, "%q: globs are not expanded; quote the word if you mean it literally", string(c))
		case '~':
			if !inWord {
				return nil, fail(i, "%q: ~ is not expanded; write the path relative to the working directory", "~")
			}
			cur.WriteByte(c)
		case '#':
			if !inWord {
				return nil, fail(i, "%q starts a comment in a shell; quote it if you mean it literally", "#")
			}
			cur.WriteByte(c)
		case 0:
			return nil, fail(i, "NUL byte in command")
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fail(quoteAt, "unterminated %c quote", quote)
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, &SyntaxError{Line: 1, Reason: "empty command"}
	}
	return args, nil
}

// isSubstStart reports whether c after a '$' would make a shell substitute something.
func isSubstStart(c byte) bool {
	return c == '(' || c == '{' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
		'0' <= c && c <= '9' || strings.IndexByte("@*#?$!-", c) >= 0
}

// IsShellString reports whether argv asks a shell to interpret a string (sh -c …), which
// fabu refuses for commands that come from data.
func IsShellString(argv []string) bool {
	if len(argv) < 2 {
		return false
	}
	prog := argv[0]
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		prog = prog[i+1:]
	}
	switch prog {
	case "env":
		rest := argv[1:]
		for len(rest) > 0 && (strings.HasPrefix(rest[0], "-") || strings.Contains(rest[0], "=")) {
			if rest[0] == "-S" || strings.HasPrefix(rest[0], "--split-string") {
				return true // env -S splits a string like a shell
			}
			rest = rest[1:]
		}
		return IsShellString(rest)
	case "busybox":
		return IsShellString(argv[1:])
	case "sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "fish":
	default:
		return false
	}
	for _, a := range argv[1:] {
		if a == "--" || !strings.HasPrefix(a, "-") {
			return false
		}
		if !strings.HasPrefix(a, "--") && strings.ContainsRune(a[1:], 'c') {
			return true
		}
	}
	return false
}

// MaxArgs bounds a command's arguments.
const MaxArgs = 1000

// Check checks argv: a program, at most MaxArgs arguments, no NUL, and no shell asked to
// interpret a string.
func Check(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("empty command")
	}
	if len(argv) > MaxArgs {
		return fmt.Errorf("%d arguments, at most %d allowed", len(argv), MaxArgs)
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return errors.New("NUL byte in an argument")
		}
	}
	if IsShellString(argv) {
		return fmt.Errorf("%s -c is not allowed: run a script file (sh build.sh) or give the command itself", argv[0])
	}
	return nil
}

// envNameRE is what a variable's name must look like.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ReservedEnv says why a build may not declare the variable name ("is set by fabu": HOME,
// PATH, FABU_*; "changes how every program is loaded": LD_*, the dynamic loader's
// LD_PRELOAD, LD_LIBRARY_PATH …), or "" when it may.
func ReservedEnv(name string) string {
	switch {
	case name == "HOME" || name == "PATH" || strings.HasPrefix(name, "FABU_"):
		return "is set by fabu"
	case strings.HasPrefix(name, "LD_"):
		return "changes how every program is loaded"
	}
	return ""
}

// CheckEnvName checks the name of a variable a build declares: letters, digits and _, not
// starting with a digit, at most 128, and not reserved (ReservedEnv).
func CheckEnvName(name string) error {
	if !envNameRE.MatchString(name) {
		return fmt.Errorf("variable name %q: use letters, digits and _, not starting with a digit", name)
	}
	if why := ReservedEnv(name); why != "" {
		return fmt.Errorf("variable %s %s and cannot be declared", name, why)
	}
	return nil
}
