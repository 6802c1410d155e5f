// Package execx runs one build stage as a local process: argv only, in a directory inside
// the checkout, with an environment of declared variables and a small fixed base, a
// timeout, an output limit, and cancellation that kills the stage's whole process group.
package execx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fabu.dev/libs/apperr"
)

// Defaults applied by Run to zero fields of a Spec.
const (
	DefaultPath        = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	DefaultTimeout     = 30 * time.Minute
	DefaultOutputLimit = 50 << 20
	DefaultGrace       = 3 * time.Second
)

// maxLineChunk caps how much of a line without a newline is held before it is written.
const maxLineChunk = 64 << 10

// drainWait bounds how long Run waits for the output pipes after the process group is
// gone; only a process that left the group (setsid) can hold them longer.
const drainWait = time.Second

// Spec is one stage to run.
type Spec struct {
	// Name names the stage in errors ("stage build: exit status 2").
	Name string
	// Argv is the program and its arguments. A program without "/" is looked up in the
	// stage's PATH; one with "/" is relative to the working directory.
	Argv []string
	// Root is the checkout (absolute); Dir is the working directory relative to it ("" is
	// Root). Dir must exist and stay inside Root, symbolic links included.
	Root string
	Dir  string
	// Home is the per-run HOME; it is created if missing. Caches (~/.m2, ~/.npm) live here.
	Home string
	// Path is the stage's PATH; empty means DefaultPath. Env may override it.
	Path string
	// Env holds the declared variables (including the FABU_* ones the builder sets). They
	// are the whole environment besides PATH, HOME, LANG=C.UTF-8 and CI=true; HOME cannot
	// be overridden.
	Env map[string]string
	// Secrets are passed like Env; their values are what Masks returns.
	Secrets map[string]string
	// Timeout bounds the stage (DefaultTimeout if zero); Grace is how long the process
	// group has between SIGTERM and SIGKILL when it is stopped (DefaultGrace if zero).
	Timeout time.Duration
	Grace   time.Duration
	// OutputLimit caps stdout plus stderr in bytes (DefaultOutputLimit if zero).
	OutputLimit int64
	// Stdout and Stderr receive the output line by line (nil discards). Writes to them are
	// serialized, so one writer may serve both.
	Stdout, Stderr io.Writer
	// Sandbox, when not nil, runs the stage isolated (sandbox.go): only Root and Home
	// writable, no view of the builder's files or processes, not root. NoNetwork takes
	// the network away too (a sandboxed stage only).
	Sandbox   *Sandbox
	NoNetwork bool
	// Image, when set, runs the stage in a container of that image through Container
	// (container.go) instead: Argv is looked up in the image, not in Path.
	Image     string
	Container *Container
}

// Masks returns the values that the run log must mask: the secrets' values and, since
// the log masks line by line, each line of a multi-line value (without its "\r"); longest
// first so that a secret containing another is masked whole.
func (s Spec) Masks() []string {
	var m []string
	add := func(v string) {
		if strings.TrimSpace(v) != "" && !slices.Contains(m, v) {
			m = append(m, v)
		}
	}
	for _, v := range s.Secrets {
		add(v)
		if strings.ContainsAny(v, "\n\r") {
			for line := range strings.Lines(v) {
				add(strings.TrimRight(line, "\r\n"))
			}
		}
	}
	slices.SortFunc(m, func(a, b string) int { return len(b) - len(a) })
	return m
}

// Result describes a finished stage.
type Result struct {
	ExitCode int
	Duration time.Duration
	Output   int64 // bytes of stdout and stderr
}

// Errors a stage can end with besides *ExitError and *NotFoundError. Check with errors.Is.
var (
	ErrTimeout     = errors.New("timed out")
	ErrOutputLimit = errors.New("output limit exceeded")
)

// ExitError is a stage whose process exited unsuccessfully.
type ExitError struct {
	Stage  string
	Code   int    // -1 when killed by a signal
	Signal string // the signal's name when killed by one
	// Last is the last line the stage wrote to stderr, masked, for the run's error.
	Last string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("stage %s: exit status %d", e.Stage, e.Code)
	if e.Signal != "" {
		msg = fmt.Sprintf("stage %s: killed by signal %s", e.Stage, e.Signal)
	}
	if e.Last != "" {
		msg += ": " + e.Last
	}
	return msg
}

// NotFoundError is a stage whose program does not exist.
type NotFoundError struct {
	Stage   string
	Program string
	Hint    string
}

func (e *NotFoundError) Error() string {
	where := "not found in PATH"
	if strings.Contains(e.Program, "/") {
		where = "not found in the working directory"
	}
	msg := fmt.Sprintf("stage %s: %s %s", e.Stage, e.Program, where)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// hints say how to get a missing tool.
var hints = map[string]string{
	"mvn": "install Maven", "gradle": "install Gradle or commit the Gradle wrapper (gradlew)",
	"java": "install a JDK", "javac": "install a JDK", "jar": "install a JDK",
	"node": "install Node.js", "npm": "install Node.js (npm)", "npx": "install Node.js (npm)",
	"yarn": "install Yarn", "pnpm": "install pnpm", "docker": "install the Docker CLI", "podman": "install podman",
	"go": "install Go", "make": "install make",
}

// Run runs spec's command to its end and reports how it ended: nil only for exit status 0.
// When ctx ends, the timeout passes or the output limit is crossed, the process group gets
// SIGTERM and, after Grace, SIGKILL. Whatever the outcome, no process of the group is left
// when Run returns.
func Run(ctx context.Context, spec Spec) (Result, error) {
	spec = withDefaults(spec)
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return Result{}, apperr.Invalid("stage %s: empty command", spec.Name)
	}
	dir, err := workDir(spec.Root, spec.Dir)
	if err != nil {
		return Result{}, fmt.Errorf("stage %s: %w", spec.Name, err)
	}
	if err := makeHome(spec.Home, spec.Sandbox); err != nil {
		return Result{}, fmt.Errorf("stage %s: create home: %w", spec.Name, err)
	}
	env := environ(spec)
	prog := spec.Argv[0]
	if spec.Image == "" {
		if prog, err = lookPath(spec.Argv[0], dir, envValue(env, "PATH")); err != nil {
			var nf *NotFoundError
			if errors.As(err, &nf) {
				nf.Stage = spec.Name
			}
			return Result{}, err
		}
	} else if spec.Container == nil {
		return Result{}, apperr.Unavailable("stage %s: runs in image %s, but this builder has no container CLI", spec.Name, spec.Image)
	}

	limitCtx, stopLimit := context.WithCancelCause(ctx)
	defer stopLimit(nil)
	runCtx, stop := context.WithTimeoutCause(limitCtx, spec.Timeout, ErrTimeout)
	defer stop()

	outR, outW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("stage %s: %w", spec.Name, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return Result{}, fmt.Errorf("stage %s: %w", spec.Name, err)
	}
	defer closeAll(outR, errR)

	var stopAt atomic.Int64 // unix nanos of the SIGTERM, 0 until then
	var cmd *exec.Cmd
	switch {
	case spec.Image != "":
		var cleanup func()
		cmd, cleanup, err = spec.Container.command(runCtx, spec, dir, env)
		if err != nil {
			closeAll(outW, errW)
			return Result{}, fmt.Errorf("stage %s: %w", spec.Name, err)
		}
		defer cleanup()
		env = cmd.Env
	case spec.Sandbox != nil:
		var closeFDs func()
		cmd, closeFDs, err = spec.Sandbox.command(runCtx, prog, spec.Argv[1:], realPath(spec.Root), realPath(spec.Home), dir, !spec.NoNetwork)
		if err != nil {
			closeAll(outW, errW)
			return Result{}, fmt.Errorf("stage %s: %w", spec.Name, err)
		}
		defer closeFDs()
	default:
		cmd = exec.CommandContext(runCtx, prog, spec.Argv[1:]...)
		cmd.Args[0] = spec.Argv[0]
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.Cancel = func() error {
		stopAt.CompareAndSwap(0, time.Now().UnixNano())
		return signalGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	// After the grace, exec kills the leader; killGroup below takes the rest.
	cmd.WaitDelay = spec.Grace

	start := time.Now()
	if err := cmd.Start(); err != nil {
		closeAll(outW, errW)
		return Result{}, fmt.Errorf("stage %s: start %s: %w", spec.Name, spec.Argv[0], err)
	}
	closeAll(outW, errW) // the children hold their own copies
	pgid := cmd.Process.Pid

	out := &sink{limit: spec.OutputLimit, exceeded: func() { stopLimit(ErrOutputLimit) }, masks: spec.Masks()}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); out.copy(outR, spec.Stdout, false) }()
	go func() { defer wg.Done(); out.copy(errR, spec.Stderr, true) }()

	waitErr := cmd.Wait()
	// The leader is gone. Members of its group that outlive it get what is left of the
	// grace if the stage was stopped, and nothing if it ended by itself: a stage must not
	// leave processes behind.
	deadline := time.Now()
	if at := stopAt.Load(); at != 0 {
		deadline = time.Unix(0, at).Add(spec.Grace)
	}
	if spec.Sandbox == nil {
		killGroup(pgid, deadline)
	}
	// A sandbox needs no sweep: its PID namespace ended with its init, killing whatever
	// was left, before bubblewrap returned. (Its init's zombie, reparented, would keep a
	// process group check busy until the system reaps it.)
	// Only a process that escaped the group can still hold the pipes.
	_ = outR.SetReadDeadline(time.Now().Add(drainWait))
	_ = errR.SetReadDeadline(time.Now().Add(drainWait))
	wg.Wait()

	res := Result{Duration: time.Since(start), Output: out.total.Load()}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("stage %s: %w", spec.Name, context.Cause(ctx))
	case errors.Is(context.Cause(limitCtx), ErrOutputLimit):
		return res, fmt.Errorf("stage %s: %w (%d MiB)", spec.Name, ErrOutputLimit, spec.OutputLimit>>20)
	case errors.Is(context.Cause(runCtx), ErrTimeout) && runCtx.Err() != nil:
		return res, fmt.Errorf("stage %s: %w after %s", spec.Name, ErrTimeout, spec.Timeout)
	}
	var ee *exec.ExitError
	switch {
	case waitErr == nil || errors.Is(waitErr, exec.ErrWaitDelay) && res.ExitCode == 0:
		return res, nil
	case errors.As(waitErr, &ee):
		xe := &ExitError{Stage: spec.Name, Code: ee.ExitCode(), Last: out.lastErr()}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			xe.Signal = ws.Signal().String()
		}
		return res, xe
	default:
		return res, fmt.Errorf("stage %s: %w", spec.Name, waitErr)
	}
}

func withDefaults(s Spec) Spec {
	if s.Path == "" {
		s.Path = DefaultPath
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Grace <= 0 {
		s.Grace = DefaultGrace
	}
	if s.OutputLimit <= 0 {
		s.OutputLimit = DefaultOutputLimit
	}
	if s.Stdout == nil {
		s.Stdout = io.Discard
	}
	if s.Stderr == nil {
		s.Stderr = io.Discard
	}
	if s.Name == "" {
		s.Name = "(unnamed)"
	}
	return s
}

// environ builds the complete environment: the base, then the declared variables, then
// the secrets; HOME always points at the run's home.
func environ(s Spec) []string {
	vars := map[string]string{"PATH": s.Path, "LANG": "C.UTF-8", "CI": "true"}
	for k, v := range s.Env {
		vars[k] = v
	}
	for k, v := range s.Secrets {
		vars[k] = v
	}
	vars["HOME"] = s.Home
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// makeHome creates the stage's HOME if missing; a sandboxed stage's user owns it.
func makeHome(home string, sb *Sandbox) error {
	if _, err := os.Stat(home); err == nil {
		return nil
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	if sb != nil {
		if err := sb.Own(home); err != nil {
			return err
		}
		return sb.Reach(home)
	}
	return nil
}

// realPath is p with symbolic links resolved, or p when that fails.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// workDir resolves dir inside root and checks that it exists and, after symbolic links,
// is still inside root.
func workDir(root, dir string) (string, error) {
	if !filepath.IsAbs(root) {
		return "", apperr.Invalid("checkout %q is not an absolute path", root)
	}
	if err := CheckRelPath(dir); err != nil {
		return "", apperr.Invalid("working directory %q: %v", dir, err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("checkout: %w", err)
	}
	full := filepath.Join(realRoot, filepath.FromSlash(dir))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", apperr.Invalid("working directory %q does not exist in the checkout", dir)
	}
	if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", apperr.Invalid("working directory %q leads outside the checkout", dir)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", apperr.Invalid("working directory %q is not a directory", dir)
	}
	return real, nil
}

// CheckRelPath checks a slash-separated path that must stay inside its base: relative,
// without "..", NUL or backslashes. "" and "." name the base itself.
func CheckRelPath(p string) error {
	switch {
	case strings.ContainsAny(p, "\x00\\"):
		return errors.New("must not contain NUL or backslashes")
	case strings.HasPrefix(p, "/"):
		return errors.New("must be relative")
	}
	for part := range strings.SplitSeq(p, "/") {
		if part == ".." {
			return errors.New(`must not contain ".."`)
		}
	}
	return nil
}

// lookPath finds prog: with a "/" relative to dir (or absolute), otherwise in path.
func lookPath(prog, dir, path string) (string, error) {
	if strings.Contains(prog, "/") {
		p := prog
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", &NotFoundError{Program: prog, Hint: hints[filepath.Base(prog)]}
			}
			return "", apperr.Invalid("%s: %v", prog, err)
		}
		return p, nil
	}
	for d := range strings.SplitSeq(path, ":") {
		if d == "" || !filepath.IsAbs(d) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(d, prog)
		if executable(p) == nil {
			return p, nil
		}
	}
	hint := hints[prog]
	if hint != "" {
		hint += " or override the command"
	}
	return "", &NotFoundError{Program: prog, Hint: hint}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("is not an executable file (is its executable bit committed?)")
	}
	return nil
}

func signalGroup(pgid int, sig syscall.Signal) error {
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// killGroup waits until deadline for the group to empty, then SIGKILLs what is left and
// waits briefly for the kill to take effect.
func killGroup(pgid int, deadline time.Time) {
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(-pgid, syscall.SIGKILL) != nil {
		return
	}
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) && syscall.Kill(-pgid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

func mask(s string, masks []string) string {
	for _, m := range masks {
		s = strings.ReplaceAll(s, m, "****")
	}
	return s
}

// sink counts both streams against the limit and writes whole lines, one at a time.
type sink struct {
	limit    int64
	exceeded func()
	masks    []string // secret values; a line cut in pieces is never cut inside one
	total    atomic.Int64
	mu       sync.Mutex
	last     string // last non-empty stderr line, masked
	lastOut  string // last error line of stdout, masked: the reason when stderr has none
	over     bool
}

func (s *sink) copy(r io.Reader, w io.Writer, isErr bool) {
	br := bufio.NewReaderSize(r, maxLineChunk)
	var carry []byte // the end of a cut line that may be the start of a secret
	for {
		line, err := br.ReadSlice('\n')
		complete := err == nil
		if len(carry) > 0 {
			line = append(carry, line...)
			carry = nil
		}
		if len(line) > 0 && !complete && errors.Is(err, bufio.ErrBufferFull) {
			// A line too long to hold is written in pieces; the log masks each piece, so
			// no piece may end inside a secret's value. What might be one is kept for the
			// next piece.
			cut := safeCut(line, s.masks)
			carry = append([]byte(nil), line[cut:]...)
			line = line[:cut]
		}
		if len(line) > 0 {
			s.write(w, line, isErr, complete)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if len(carry) > 0 {
				s.write(w, carry, isErr, false)
			}
			return
		}
	}
}

// safeCut returns where the piece p of a longer line may be cut so that no value in masks
// is split: before any occurrence crossing the end of p, and before any end of p that
// could begin a value continued in the next piece.
func safeCut(p []byte, masks []string) int {
	cut := len(p)
	for changed := true; changed; {
		changed = false
		for _, m := range masks {
			// An occurrence starting before cut that does not end by cut.
			for start := max(0, cut-len(m)+1); start < cut; start++ {
				end := start + len(m)
				if end <= len(p) && string(p[start:end]) == m || end > len(p) && strings.HasPrefix(m, string(p[start:])) {
					cut, changed = start, true
					break
				}
			}
		}
	}
	return cut
}

func (s *sink) write(w io.Writer, line []byte, isErr, complete bool) {
	n := s.total.Add(int64(len(line)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.over {
		return
	}
	if n > s.limit {
		s.over = true
		s.exceeded()
		_, _ = fmt.Fprintf(w, "fabu: output limit of %d MiB exceeded; stopping the stage\n", s.limit>>20)
		return
	}
	if !complete {
		line = append(line[:len(line):len(line)], '\n')
	}
	_, _ = w.Write(line)
	t := strings.TrimSpace(StripANSI(string(line)))
	switch {
	case t == "":
	case isErr:
		s.last = mask(t, s.masks) // before lastErr cuts it, so no part of a secret survives
	case isErrorLine(t):
		s.lastOut = mask(t, s.masks)
	}
}

// lastErr is the line that says why the stage failed: the last line it wrote to stderr,
// or, when that holds nothing readable (Maven and Gradle report on stdout, some tools end
// stderr with colour resets only), the last error line of stdout.
func (s *sink) lastErr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.last
	if last == "" {
		last = s.lastOut
	}
	if len(last) > 300 {
		return strings.ToValidUTF8(last[:300], "") + "…"
	}
	return last
}

// ansiRE matches terminal escape sequences: CSI (colours, cursor moves), OSC (titles,
// links) and two-byte escapes.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])`)

// StripANSI removes terminal escape sequences from s.
func StripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	return ansiRE.ReplaceAllString(s, "")
}

// errorLineRE recognizes a line reporting an error: Maven's and Gradle's "[ERROR] …",
// compilers' "file:3:5: error: …", npm's "npm ERR! …", "ERROR: …" and "error …".
var errorLineRE = regexp.MustCompile(`(?i)^(\[error\]|npm err!|error\b|fatal\b|failure:|.*:\s*(error|fatal)\b)`)

// boilerplate are error lines that say nothing about this failure (Maven's epilogue).
var boilerplate = []string{"-> [Help", "[Help ", "To see the full stack trace", "Re-run Maven", "For more information about the errors", "Please refer to", "After correcting the problems"}

func isErrorLine(t string) bool {
	if !errorLineRE.MatchString(t) {
		return false
	}
	rest := strings.TrimSpace(strings.TrimPrefix(t, "[ERROR]"))
	if rest == "" {
		return false
	}
	for _, b := range boilerplate {
		if strings.HasPrefix(rest, b) {
			return false
		}
	}
	return true
}
