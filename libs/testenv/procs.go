package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PIDsOf returns the pids of the live processes whose command line, arguments joined by
// spaces, is cmdline. Tests find a process started in another PID namespace (a sandboxed
// build stage) this way, by a command line no other process has; a zombie, whose command
// line is empty, never matches.
func PIDsOf(cmdline string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && len(b) > 0 && strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}
