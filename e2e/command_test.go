package e2e

import (
	"os"
	"os/exec"
)

func command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(fabuBin, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}
