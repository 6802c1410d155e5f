package execx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"fabu.dev/libs/apperr"
)

// Container runs stages in container images through a container CLI (docker or podman):
// the second executor besides the sandbox, for stages that need a toolchain the builder
// does not have. The stage's checkout and HOME are mounted at their own paths, its
// variables reach the container through a private env file (never a command line), and
// the container is removed when the stage ends, is cancelled or times out. Containers
// are labelled with Label, so Sweep removes those a killed builder left behind.
type Container struct {
	CLI string            // docker, podman or an absolute path to one
	Env map[string]string // the CLI's own environment: DOCKER_HOST, CONTAINER_HOST …
	// Label marks the containers of this builder (its workspace); Sweep removes them.
	Label string
	// UID and GID the stage runs as in the container; -1 keeps the image's user.
	UID, GID int
}

// containerLabel is the label key of stage containers.
const containerLabel = "fabu.stage"

// command returns the CLI invocation running spec in spec.Image, and a function that
// removes the container and its env file afterwards.
func (c *Container) command(ctx context.Context, spec Spec, dir string, env []string) (*exec.Cmd, func(), error) {
	for _, p := range []string{spec.Root, spec.Home, dir} {
		if strings.ContainsAny(p, ":,\n") {
			return nil, nil, apperr.Invalid("container stage: path %q cannot be mounted (it holds ':' or ',')", p)
		}
	}
	if strings.HasPrefix(spec.Argv[0], "-") {
		return nil, nil, apperr.Invalid("container stage: command %q must not start with '-'", spec.Argv[0])
	}
	tmp, err := os.MkdirTemp("", "fabu-stage-env-")
	if err != nil {
		return nil, nil, fmt.Errorf("container stage: %w", err)
	}
	envFile := filepath.Join(tmp, "env")
	var b strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			continue // the image's own
		}
		if strings.ContainsAny(v, "\n\r") {
			_ = os.RemoveAll(tmp)
			return nil, nil, apperr.Invalid("container stage: variable %s has a line break, which an env file cannot carry; give it to a stage without image", k)
		}
		b.WriteString(kv + "\n")
	}
	if err := os.WriteFile(envFile, []byte(b.String()), 0o600); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, nil, fmt.Errorf("container stage: %w", err)
	}
	name := "fabu-stage-" + randomHex(8)
	args := []string{"run", "--rm", "--name", name, "--label", containerLabel + "=" + c.Label,
		"--security-opt", "no-new-privileges", "--env-file", envFile,
		"-v", realPath(spec.Root) + ":" + realPath(spec.Root), "-w", dir, "--entrypoint="}
	if home := realPath(spec.Home); home != realPath(spec.Root) {
		args = append(args, "-v", home+":"+home)
	}
	if spec.NoNetwork {
		args = append(args, "--network", "none")
	}
	if c.UID >= 0 {
		args = append(args, "--user", fmt.Sprintf("%d:%d", c.UID, c.GID))
	}
	args = append(args, spec.Image)
	args = append(args, spec.Argv...)
	cmd := exec.CommandContext(ctx, c.CLI, args...)
	cmd.Env = c.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cleanup := func() {
		// Whatever ended the CLI, the container must not outlive the stage.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rm := exec.CommandContext(rctx, c.CLI, "rm", "-f", "-t", "0", "--ignore", name)
		if !strings.Contains(filepath.Base(c.CLI), "podman") {
			rm = exec.CommandContext(rctx, c.CLI, "rm", "-f", name)
		}
		rm.Env = c.environ()
		_ = rm.Run()
		_ = os.RemoveAll(tmp)
	}
	return cmd, cleanup, nil
}

// Sweep removes the stage containers of this builder that are still there: those of
// builds a killed builder was running.
func (c *Container) Sweep(ctx context.Context) error {
	ps := exec.CommandContext(ctx, c.CLI, "ps", "-aq", "--filter", "label="+containerLabel+"="+c.Label)
	ps.Env = c.environ()
	out, err := ps.Output()
	if err != nil {
		return fmt.Errorf("list stage containers: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	rm := exec.CommandContext(ctx, c.CLI, append([]string{"rm", "-f"}, ids...)...)
	rm.Env = c.environ()
	if out, err := rm.CombinedOutput(); err != nil {
		return fmt.Errorf("remove stage containers: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// environ is the CLI's environment: a fixed base and the configured variables.
func (c *Container) environ() []string {
	env := []string{"PATH=" + DefaultPath, "LANG=C.UTF-8"}
	if h, err := os.UserHomeDir(); err == nil {
		env = append(env, "HOME="+h)
	}
	for k, v := range c.Env {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
