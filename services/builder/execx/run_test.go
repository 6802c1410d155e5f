package execx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
)

// buffer is a bytes.Buffer safe for the test to read while Run writes.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func spec(t *testing.T, name string, argv ...string) (Spec, *buffer) {
	t.Helper()
	out := &buffer{}
	return Spec{Name: name, Argv: argv, Root: t.TempDir(), Home: filepath.Join(t.TempDir(), "home"),
		Path: os.Getenv("PATH"), Stdout: out, Stderr: out, Timeout: time.Minute}, out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && syscall.Kill(pid, 0) == nil
}

func readPIDs(t *testing.T, file string, n int) []int {
	t.Helper()
	var pids []int
	eventually(t, 10*time.Second, fmt.Sprintf("%d pids in %s", n, file), func() bool {
		b, _ := os.ReadFile(file)
		pids = pids[:0]
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return len(pids) >= n
	})
	return pids
}

func TestRunStreamsOutputAndSucceeds(t *testing.T) {
	s, out := spec(t, "hello", "sh", "-c", "echo one; echo two >&2; printf three")
	res, err := Run(context.Background(), s)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 0 || res.Output != int64(len("one\ntwo\nthree")) {
		t.Errorf("result = %+v, want exit 0 and %d bytes", res, len("one\ntwo\nthree"))
	}
	got := out.String()
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("output %q lacks line %q (a last line without newline is completed)", got, line)
		}
	}
}

func TestRunFailingCommandFailsWithItsExitCode(t *testing.T) {
	s, _ := spec(t, "build", "sh", "-c", "echo 'compiling with hunter22'; echo 'error: hunter22 rejected' >&2; exit 2")
	s.Secrets = map[string]string{"TOKEN": "hunter22"}
	res, err := Run(context.Background(), s)
	var xe *ExitError
	if !errors.As(err, &xe) {
		t.Fatalf("Run error = %v, want *ExitError", err)
	}
	if xe.Code != 2 || res.ExitCode != 2 {
		t.Errorf("exit code = %d (result %d), want 2", xe.Code, res.ExitCode)
	}
	if want := "stage build: exit status 2: error: **** rejected"; err.Error() != want {
		t.Errorf("error = %q, want %q (last stderr line, secret masked)", err, want)
	}
}

func TestRunMissingProgram(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"known tool", []string{"mvn", "-B", "package"}, "stage build: mvn not found in PATH: install Maven or override the command"},
		{"unknown tool", []string{"frobnicate"}, "stage build: frobnicate not found in PATH"},
		{"wrapper missing", []string{"./gradlew", "build"}, "stage build: ./gradlew not found in the working directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := spec(t, "build", tt.argv...)
			s.Path = t.TempDir() // nothing in it
			_, err := Run(context.Background(), s)
			var nf *NotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("Run error = %v, want *NotFoundError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestRunNonExecutableWrapper(t *testing.T) {
	s, _ := spec(t, "build", "./gradlew", "build")
	if err := os.WriteFile(filepath.Join(s.Root, "gradlew"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), s)
	if !apperr.Is(err, apperr.CodeInvalid) || !strings.Contains(err.Error(), "executable bit") {
		t.Fatalf("Run error = %v, want an invalid error about the executable bit", err)
	}
}

func TestRunEnvironmentHoldsOnlyDeclaredVariables(t *testing.T) {
	t.Setenv("FABU_TEST_LEAK", "leaked")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "leaked")
	s, out := spec(t, "env", "env")
	s.Env = map[string]string{"MAVEN_OPTS": "-Xmx1g", "FABU_COMMIT": "abc123", "HOME": "/root"}
	s.Secrets = map[string]string{"NPM_TOKEN": "s3cret-token", "EMPTY": ""}
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := map[string]string{}
	for line := range strings.Lines(out.String()) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH": s.Path, "HOME": s.Home, "LANG": "C.UTF-8", "CI": "true",
		"MAVEN_OPTS": "-Xmx1g", "FABU_COMMIT": "abc123", "NPM_TOKEN": "s3cret-token", "EMPTY": "",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "PWD" && k != "SHLVL" && k != "_" { // set by env/sh itself
			t.Errorf("unexpected variable %s=%q in the stage's environment", k, got[k])
		}
	}
	if fi, err := os.Stat(s.Home); err != nil || !fi.IsDir() {
		t.Errorf("home %s not created: %v", s.Home, err)
	}
	if m := s.Masks(); len(m) != 1 || m[0] != "s3cret-token" {
		t.Errorf("Masks() = %q, want [s3cret-token]", m)
	}
}

func TestRunWorkingDirectory(t *testing.T) {
	s, out := spec(t, "pwd", "pwd")
	if err := os.MkdirAll(filepath.Join(s.Root, "web", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.Root, "escape")); err != nil {
		t.Fatal(err)
	}
	s.Dir = "web/app"
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run in web/app: %v", err)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(s.Root, "web", "app"))
	if got := strings.TrimSpace(out.String()); got != real {
		t.Errorf("pwd = %q, want %q", got, real)
	}
	for _, dir := range []string{"../x", "web/../../x", "/etc", "missing", "escape"} {
		s.Dir = dir
		_, err := Run(context.Background(), s)
		if !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("Dir %q: error = %v, want invalid", dir, err)
		}
	}
}

func TestCancelKillsTheWholeProcessGroupWithinFiveSeconds(t *testing.T) {
	for _, tt := range []struct {
		name, script string
	}{
		{"polite children", `sleep 300 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; sleep 300`},
		// The grandchild ignores SIGTERM; only the SIGKILL after the grace stops it.
		{"grandchild ignores SIGTERM", `sh -c 'trap "" TERM; echo $$ >> "$PIDS"; while :; do sleep 1; done' & echo $$ >> "$PIDS"; wait`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := spec(t, "build", "sh", "-c", tt.script)
			pidFile := filepath.Join(t.TempDir(), "pids")
			s.Env = map[string]string{"PIDS": pidFile}
			s.Grace = 2 * time.Second
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := Run(ctx, s); done <- err }()
			pids := readPIDs(t, pidFile, 2)
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Run error = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return within 5s of cancellation")
			}
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("process %d still alive %s after cancel", pid, time.Since(start))
				}
			}
		})
	}
}

func TestRunLeavesNoBackgroundProcessBehind(t *testing.T) {
	s, _ := spec(t, "start", "sh", "-c", `sleep 300 & echo $! > "$PIDS"`)
	pidFile := filepath.Join(t.TempDir(), "pids")
	s.Env = map[string]string{"PIDS": pidFile}
	start := time.Now()
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s; a finished stage must not wait for its background processes", d)
	}
	pid := readPIDs(t, pidFile, 1)[0]
	if alive(pid) {
		t.Errorf("background process %d outlived its stage", pid)
	}
}

func TestRunTimeout(t *testing.T) {
	s, _ := spec(t, "test", "sleep", "300")
	s.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := Run(context.Background(), s)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run error = %v, want ErrTimeout", err)
	}
	if want := "stage test: timed out after 300ms"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed-out stage took %s to stop", d)
	}
}

func TestRunOutputLimit(t *testing.T) {
	s, out := spec(t, "noisy", "yes", "fabu output limit test line")
	s.OutputLimit = 1 << 20
	res, err := Run(context.Background(), s)
	if !errors.Is(err, ErrOutputLimit) {
		t.Fatalf("Run error = %v, want ErrOutputLimit", err)
	}
	if !strings.HasPrefix(err.Error(), "stage noisy: output limit exceeded") {
		t.Errorf("error = %q", err)
	}
	if n := len(out.String()); n > 1<<20+200 {
		t.Errorf("%d bytes reached the log, want at most the limit plus a notice", n)
	}
	if !strings.Contains(out.String(), "output limit of 1 MiB exceeded") {
		t.Errorf("log does not say why the stage stopped")
	}
	if res.Output <= 1<<20 {
		t.Errorf("Output = %d, want beyond the limit", res.Output)
	}
}

func TestRunLongLinesAreChunked(t *testing.T) {
	s, out := spec(t, "long", "sh", "-c", `head -c 200000 /dev/zero | tr '\0' x`)
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || len(lines[0]) != maxLineChunk {
		t.Errorf("got %d lines (first %d bytes), want 4 chunks of at most %d bytes", len(lines), len(lines[0]), maxLineChunk)
	}
}

// A failed stage's error quotes the line that says why, readable: escapes stripped, and
// from stdout's error lines when stderr says nothing (Maven reports on stdout).
func TestRunErrorQuotesTheMeaningfulLine(t *testing.T) {
	const mavenLog = "[INFO] BUILD FAILURE\n[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:3.11.0:compile (default-compile) on project app: Compilation failure\n" +
		"\x1b[1;31m[ERROR]\x1b[m /w/src/main/java/App.java:[3,5] ';' expected\n[ERROR] -> [Help 1]\n[ERROR] \n" +
		"[ERROR] Re-run Maven using the -X switch to enable full debug logging.\n[ERROR] [Help 1] http://cwiki.apache.org/confluence/display/MAVEN/MojoFailureException\n"
	const maven = `cat maven.log; printf '\033[0m\033[0m\n' >&2; exit 1`
	tests := []struct {
		name, script, want string
	}{
		{"maven on stdout, colour resets on stderr", maven, "stage build: exit status 1: [ERROR] /w/src/main/java/App.java:[3,5] ';' expected"},
		{"stderr wins", `echo 'error: not this'; printf '\033[31mfatal: repository not found\033[0m\n' >&2; exit 2`, "stage build: exit status 2: fatal: repository not found"},
		{"compiler line on stdout", `echo 'src/a.c:3:5: error: expected ;'; echo 'make: leaving'; exit 2`, "stage build: exit status 2: src/a.c:3:5: error: expected ;"},
		{"nothing said", `echo building; exit 3`, "stage build: exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := spec(t, "build", "sh", "-c", tt.script)
			if err := os.WriteFile(filepath.Join(s.Root, "maven.log"), []byte(mavenLog), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Run(context.Background(), s)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestStripANSI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\x1b[1;31mred\x1b[0m", "red"},
		{"\x1b]0;title\x07text", "text"},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"plain", "plain"},
		{"\x1b[0m\x1b[0m", ""},
	}
	for _, tt := range tests {
		if got := StripANSI(tt.in); got != tt.want {
			t.Errorf("StripANSI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
