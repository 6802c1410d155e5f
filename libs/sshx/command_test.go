package sshx_test

import (
	"errors"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
)

func TestQuote(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", `''`},
		{"plain", "abc", `'abc'`},
		{"space", "a b", `'a b'`},
		{"single quote", "it's", `'it'\''s'`},
		{"only quotes", "''", `''\'''\'''`},
		{"command substitution", "$(id)", `'$(id)'`},
		{"backticks", "`id`", "'`id`'"},
		{"semicolon", "main;id", `'main;id'`},
		{"backslash", `a\b`, `'a\b'`},
		{"double quotes", `"x"`, `'"x"'`},
		{"unicode", "发布", `'发布'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sshx.Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidPath(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"root", "/", true},
		{"deploy path", "/srv/app/releases/01HZX", true},
		{"dots inside names", "/srv/a..b/.c/d.", true},
		{"unicode", "/srv/发布", true},
		{"shell characters are data", "/srv/$(id);`x` 'y'", true},
		{"empty", "", false},
		{"relative", "srv/app", false},
		{"dot relative", "./srv", false},
		{"parent", "/srv/../etc", false},
		{"trailing parent", "/srv/..", false},
		{"root parent", "/..", false},
		{"dot element", "/srv/./app", false},
		{"trailing slash", "/srv/app/", false},
		{"double slash", "/srv//app", false},
		{"NUL", "/srv/a\x00b", false},
		{"newline", "/srv/a\nb", false},
		{"escape", "/srv/\x1b[31m", false},
		{"DEL", "/srv/a\x7f", false},
		{"C1 control", "/srv/a\u0085", false},
		{"invalid UTF-8", "/srv/\xff", false},
		{"too long", "/" + strings.Repeat("a", 4096), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sshx.ValidPath(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidPath(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && apperr.CodeOf(err) != apperr.CodeInvalid {
				t.Errorf("ValidPath(%q) code = %q, want invalid", tt.in, apperr.CodeOf(err))
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"simple", "app", true},
		{"all classes", "My_App-1.2.3", true},
		{"leading dot", ".fabu", true},
		{"digits", "1234567", true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"leading dash", "-rf", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"semicolon", "main;id", false},
		{"quote", "a'b", false},
		{"dollar", "$x", false},
		{"newline", "a\n", false},
		{"unicode", "发布", false},
		{"too long", strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sshx.ValidName(tt.in); (err == nil) != tt.ok {
				t.Errorf("ValidName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestNewCommand(t *testing.T) {
	tests := []struct {
		name string
		tmpl sshx.Template
		args []sshx.Arg
		want string // "" means an error is expected
	}{
		{"no args", "uptime", nil, "uptime"},
		{"path and name", "ln -sfn %s %s", []sshx.Arg{sshx.PathArg("/srv/a b"), sshx.NameArg("current")}, `ln -sfn '/srv/a b' 'current'`},
		{"literal percent", "date +%%s; printf %%s %s", []sshx.Arg{sshx.TextArg("it's")}, `date +%s; printf %s 'it'\''s'`},
		{"mode", "chmod %s %s", []sshx.Arg{sshx.ModeArg(0o640), sshx.PathArg("/f")}, `chmod '0640' '/f'`},
		{"text with shell syntax", "echo %s", []sshx.Arg{sshx.TextArg("$(id)")}, `echo '$(id)'`},
		{"invalid path", "rm -rf %s", []sshx.Arg{sshx.PathArg("/srv/../")}, ""},
		{"invalid name", "cat %s", []sshx.Arg{sshx.NameArg("a;b")}, ""},
		{"text with newline", "echo %s", []sshx.Arg{sshx.TextArg("a\nb")}, ""},
		{"mode beyond permissions", "chmod %s /f", []sshx.Arg{sshx.ModeArg(os.ModeSetuid | 0o755)}, ""},
		{"zero Arg", "echo %s", []sshx.Arg{{}}, ""},
		{"too few args", "cp %s %s", []sshx.Arg{sshx.PathArg("/a")}, ""},
		{"too many args", "cp %s", []sshx.Arg{sshx.PathArg("/a"), sshx.PathArg("/b")}, ""},
		{"other verb", "echo %d", nil, ""},
		{"trailing percent", "echo 100%", nil, ""},
		{"empty", "  ", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := sshx.NewCommand(tt.tmpl, tt.args...)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NewCommand(%q) = %q, want an error", tt.tmpl, cmd)
				}
				if !cmd.IsZero() {
					t.Errorf("NewCommand(%q) returned a command with its error: %q", tt.tmpl, cmd)
				}
				if code := apperr.CodeOf(err); code != apperr.CodeInvalid {
					t.Errorf("NewCommand(%q) code = %q, want invalid (err: %v)", tt.tmpl, code, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewCommand(%q): %v", tt.tmpl, err)
			}
			if got := cmd.String(); got != tt.want {
				t.Errorf("NewCommand(%q) = %s, want %s", tt.tmpl, got, tt.want)
			}
		})
	}
}

// FuzzQuote checks with the local sh that Quote(s) is read back as exactly s for every
// valid UTF-8 string without NUL (which no argv can carry).
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", "it's", "''", "$(id)", "`id`", "a\nb", `\`, "!", "%s", "发布", "\t*?[a]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Skip()
		}
		out, err := exec.Command("sh", "-c", "printf %s "+sshx.Quote(s)).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("sh -c printf %%s %s: %v: %s", sshx.Quote(s), err, ee.Stderr)
			}
			t.Fatalf("sh: %v", err)
		}
		if string(out) != s {
			t.Fatalf("sh read Quote(%q) back as %q", s, out)
		}
	})
}

// FuzzValidPath checks that every accepted path has the properties ValidPath promises.
func FuzzValidPath(f *testing.F) {
	for _, s := range []string{"/", "/srv/app", "/srv/../x", "srv", "/a//b", "/a/", "/a\nb", "/..", "/a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if sshx.ValidPath(p) != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || len(p) > 4096 || !utf8.ValidString(p) {
			t.Fatalf("ValidPath accepted %q: not absolute, clean, short UTF-8", p)
		}
		for _, elem := range strings.Split(p, "/") {
			if elem == ".." || elem == "." {
				t.Fatalf("ValidPath accepted %q with element %q", p, elem)
			}
		}
		if strings.IndexFunc(p, unicode.IsControl) >= 0 {
			t.Fatalf("ValidPath accepted %q with a control character", p)
		}
		if _, err := sshx.NewCommand("ls %s", sshx.PathArg(p)); err != nil {
			t.Fatalf("PathArg rejected valid path %q: %v", p, err)
		}
	})
}
