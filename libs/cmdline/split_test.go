package cmdline

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "mvn -B -q package", []string{"mvn", "-B", "-q", "package"}},
		{"extra spaces and tabs", "  npm\t run   build ", []string{"npm", "run", "build"}},
		{"single quotes keep everything", `echo 'a | b; $(c) > d * ~'`, []string{"echo", "a | b; $(c) > d * ~"}},
		{"double quotes", `echo "a b" "c\"d" "e\\f" "\$HOME" "x\y"`, []string{"echo", "a b", `c"d`, `e\f`, "$HOME", `x\y`}},
		{"double quotes keep metacharacters", `echo "a|b;c>d&e*f"`, []string{"echo", "a|b;c>d&e*f"}},
		{"adjacent quoting joins one word", `-Dname="a b"'c'd`, []string{"-Dname=a bcd"}},
		{"empty argument", `git commit -m ""`, []string{"git", "commit", "-m", ""}},
		{"backslash escapes", `echo a\ b \|`, []string{"echo", "a b", "|"}},
		{"line continuation", "mvn \\\npackage", []string{"mvn", "package"}},
		{"lone dollar is literal", "echo 5$ a$", []string{"echo", "5$", "a$"}},
		{"tilde and hash inside a word", "echo a~b a#b", []string{"echo", "a~b", "a#b"}},
		{"equals and dashes", "./gradlew --no-daemon -Pprofile=prod build", []string{"./gradlew", "--no-daemon", "-Pprofile=prod", "build"}},
		{"unicode", "echo 发布", []string{"echo", "发布"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			if err != nil {
				t.Fatalf("Split(%q) error: %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitRefuses(t *testing.T) {
	tests := []struct {
		name, in, reason string
		line             int
	}{
		{"pipe", "cat a | grep b", "pipe", 1},
		{"semicolon", "make; make install", `";"`, 1},
		{"and list", "npm ci && npm run build", `"&&"`, 1},
		{"or list", "a || b", "pipe", 1},
		{"background", "sleep 1 &", "background", 1},
		{"redirect out", "echo hi > out.txt", "redirection", 1},
		{"redirect fd", "make 2>&1", "redirection", 1},
		{"redirect in", "sort < x", "redirection", 1},
		{"command substitution", "echo $(id)", "substitution", 1},
		{"command substitution in double quotes", `echo "$(id)"`, "substitution", 1},
		{"backticks", "echo `id`", "backticks", 1},
		{"backticks in double quotes", "echo \"`id`\"", "backticks", 1},
		{"variable", "echo $HOME", "not expanded", 1},
		{"braced variable", `echo "${HOME}"`, "not expanded", 1},
		{"glob", "cp target/*.jar out", "glob", 1},
		{"question glob", "ls a?", "glob", 1},
		{"tilde", "ls ~/.m2", "~", 1},
		{"comment", "make # all", "comment", 1},
		{"subshell", "(cd x)", "subshell", 1},
		{"two lines", "npm ci\nnpm run build", "one line", 1},
		{"unterminated single", "echo 'abc", "unterminated ' quote", 1},
		{"unterminated double", "echo \"abc", `unterminated " quote`, 1},
		{"trailing backslash", `echo \`, "trailing backslash", 1},
		{"empty", "   ", "empty command", 1},
		{"error on a continued line", "mvn \\\n -q | x", "pipe", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Split(%q) = %q, %v; want a *SyntaxError", tt.in, got, err)
			}
			if !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to mention %q", se.Reason, tt.reason)
			}
			if se.Line != tt.line {
				t.Errorf("line = %d, want %d", se.Line, tt.line)
			}
		})
	}
}

func TestIsShellString(t *testing.T) {
	tests := []struct {
		argv []string
		want bool
	}{
		{[]string{"sh", "-c", "x"}, true},
		{[]string{"/bin/bash", "-ec", "x"}, true},
		{[]string{"bash", "-e", "-c", "x"}, true},
		{[]string{"busybox", "sh", "-c", "x"}, true},
		{[]string{"env", "A=1", "sh", "-c", "x"}, true},
		{[]string{"env", "-S", "sh x"}, true},
		{[]string{"sh", "build.sh", "-c"}, false},
		{[]string{"bash", "-e", "build.sh"}, false},
		{[]string{"env", "A=1", "node", "build.js"}, false},
		{[]string{"mvn", "-c"}, false},
		{[]string{"sh"}, false},
	}
	for _, tt := range tests {
		if got := IsShellString(tt.argv); got != tt.want {
			t.Errorf("IsShellString(%q) = %v, want %v", tt.argv, got, tt.want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"mvn -B package", `echo "a b" 'c'`, "a|b", "x\\\ny", `"\`, "$(x)", "~", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := Split(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line < 1 || se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("Split(%q): bad error %#v", s, err)
			}
			return
		}
		if len(args) == 0 {
			t.Fatalf("Split(%q) accepted with no words", s)
		}
	})
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string // "" for accepted; else part of the error
	}{
		{"plain", []string{"make", "-j4"}, ""},
		{"script through a shell", []string{"sh", "build.sh"}, ""},
		{"empty", nil, "empty command"},
		{"empty program", []string{""}, "empty command"},
		{"NUL", []string{"echo", "a\x00b"}, "NUL"},
		{"sh -c", []string{"sh", "-c", "id"}, "sh -c is not allowed"},
		{"bash -ec", []string{"/bin/bash", "-ec", "id"}, "-c is not allowed"},
		{"env sh -c", []string{"env", "A=1", "sh", "-c", "id"}, "-c is not allowed"},
		{"too many", slices.Repeat([]string{"x"}, MaxArgs+1), "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.argv)
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check(%q) = %v, want %q", tt.argv, err, tt.want)
			}
		})
	}
}

func TestCheckEnvName(t *testing.T) {
	for _, ok := range []string{"NODE_ENV", "_x", "A1", "MAVEN_OPTS", "PATHS", "XLD_PRELOAD", "HOMEDIR", strings.Repeat("A", 128)} {
		if err := CheckEnvName(ok); err != nil {
			t.Errorf("CheckEnvName(%q) = %v, want nil", ok, err)
		}
	}
	for name, want := range map[string]string{
		"1A": "use letters", "A-B": "use letters", "": "use letters", strings.Repeat("A", 129): "use letters",
		"HOME": "is set by fabu", "PATH": "is set by fabu", "FABU_COMMIT": "is set by fabu",
		"LD_PRELOAD": "changes how every program is loaded", "LD_LIBRARY_PATH": "changes how every program is loaded",
		"LD_AUDIT": "changes how every program is loaded",
	} {
		if err := CheckEnvName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckEnvName(%q) = %v, want an error containing %q", name, err, want)
		}
	}
}
