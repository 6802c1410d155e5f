package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// waitDelay bounds how long Wait waits for git's output pipes after the process group was
// killed; a killed group closes them at once, so this only matters for a stuck descendant
// that left the group.
const waitDelay = 2 * time.Second

// gitCmd is one git invocation: argv only, never a shell.
type gitCmd struct {
	args   []string
	stdout io.Writer // nil: the log
	log    io.Writer
	env    []string // extra environment entries for this call (identity, credentials)
}

// command builds the exec.Cmd for c. git runs in its own process group, and cancelling ctx
// kills the whole group, so helpers git starts (git-remote-https, ssh, index-pack) die with
// it instead of outliving a cancelled run.
func (w *Workspace) command(ctx context.Context, c gitCmd) (*exec.Cmd, error) {
	home, err := w.home()
	if err != nil {
		return nil, err
	}
	bin := w.Git
	if bin == "" {
		bin = "git"
	}
	// Settings that no repository or inherited configuration may change: the ext and fd
	// transports run local commands, and prompts would hang a headless run.
	args := append([]string{
		"-c", "protocol.ext.allow=never",
		"-c", "protocol.fd.allow=never",
		"-c", "core.askPass=",
		"-c", "credential.helper=",
	}, c.args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(w.env(home), c.env...)
	log := c.log
	if log == nil {
		log = io.Discard
	}
	shared := &lockedWriter{w: log} // stdout and stderr may both go to log, from two goroutines
	cmd.Stdout = shared
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	cmd.Stderr = &tailWriter{w: shared}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group id is the leader's pid (Setpgid with Pgid 0).
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	return cmd, nil
}

// run runs git to completion. Errors name the git subcommand, not its arguments, because
// arguments may hold a URL with credentials.
func (w *Workspace) run(ctx context.Context, c gitCmd) error {
	cmd, err := w.command(ctx, c)
	if err != nil {
		return err
	}
	if err := cmd.Run(); err != nil {
		if reason := cmd.Stderr.(*tailWriter).reason(); reason != "" && ctx.Err() == nil {
			err = fmt.Errorf("%w: %s", err, reason)
		}
		return gitError(ctx, c.args, err)
	}
	return nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailWriter passes git's stderr on and keeps its end, so an error can say why git failed
// ("fatal: repository … does not exist"). Credentials never reach git's argv or config
// (credentials.go), so git cannot print them.
type tailWriter struct {
	w    io.Writer
	tail []byte
}

const maxTail = 4096

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > maxTail {
		t.tail = t.tail[len(t.tail)-maxTail:]
	}
	return t.w.Write(p)
}

// reason returns git's last "fatal:" or "error:" line, or "".
func (t *tailWriter) reason() string {
	lines := strings.Split(strings.TrimSpace(string(t.tail)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "fatal: ") || strings.HasPrefix(l, "error: ") {
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			return l
		}
	}
	return ""
}

func gitError(ctx context.Context, args []string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("git %s: %w", subcommand(args), ctxErr)
	}
	return fmt.Errorf("git %s: %w", subcommand(args), err)
}

// subcommand returns the first argument that is not a global option, for error messages.
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-C":
			i++
		case len(a) > 0 && a[0] == '-':
		default:
			return a
		}
	}
	return "(no subcommand)"
}

// env is the complete environment of every git process: nothing inherited but PATH (to find
// git's helpers and ssh), so no GIT_* variable, credential or proxy of the builder's own
// environment leaks in; HOME is a private empty directory so no user configuration applies.
func (w *Workspace) env(home string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"LC_ALL=C",
	}
	return append(env, w.Env...)
}

// home returns (creating it) the HOME given to git: <Base>/.home. No platform may start with
// ".", so it never collides with the workspace layout.
func (w *Workspace) home() (string, error) {
	if w.Base == "" {
		return "", errors.New("workspace: Base is not set")
	}
	home := filepath.Join(w.Base, ".home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("create git home: %w", err)
	}
	return home, nil
}
