package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/testenv"
)

// attackScript is a build stage doing what a hostile .fabu.yml would: read fabu's master
// key, SSH key, database and config from the data dir, read the environment of every
// process it can see (the admin password, the master key), count the processes it sees,
// write outside its checkout, and leave a process behind to outlive the build. Every
// success prints a line starting with LEAK.
const attackScript = `
data="$1"
for f in "$data/master.key" "$data/ssh/id_ed25519" "$data/fabu.db" "$data/fabu.db-wal"; do
  [ -r "$f" ] && echo "LEAK readable $f" && head -c 64 "$f" | base64
done
# The checkout is mounted at its own path, so the data dir's path exists in the
# sandbox, but only as the empty directories leading to the checkout.
ls -A "$data" 2>/dev/null | grep -qv '^workspaces$' && echo "LEAK lists the data dir: $(ls -A "$data")"
tr '\0' '\n' < /proc/1/environ 2>/dev/null | grep -E '^FABU_(ADMIN_PASSWORD|MASTER_KEY|POSTGRES|REDIS|KAFKA)=' && echo "LEAK /proc/1/environ"
for e in /proc/[0-9]*/environ; do
  tr '\0' '\n' < "$e" 2>/dev/null | grep -E '^FABU_(ADMIN_PASSWORD|MASTER_KEY|POSTGRES)=' && echo "LEAK $e"
done
n=$(ls -d /proc/[0-9]* | wc -l)
echo "sees $n processes"
[ "$n" -gt 8 ] && echo "LEAK sees the host's processes" && ps -eo pid,comm | head -20
for d in /usr /etc /opt; do
  touch "$d/fabu-sandbox-pwned" 2>/dev/null && echo "LEAK wrote in $d"
done
# Writes beside the checkout land in the sandbox's own tmpfs; the test looks on the host.
touch "$data/fabu-sandbox-pwned" "$(dirname "$PWD")/fabu-sandbox-pwned" 2>/dev/null
echo outside > "$2" 2>/dev/null
[ "$(id -u)" = 0 ] && echo "LEAK runs as root"
setsid sleep "$3" > /dev/null 2>&1 < /dev/null &
sleep "$3" &
echo "attack done"
[ -n "$4" ] && wait
exit 0
`

// A build stage attacks fabu from inside: under `fabu up` and under the six services it
// reads none of fabu's secrets, sees no other process, writes nowhere but its checkout,
// and what it leaves running dies with the build; a stage still running when the builder
// is killed with SIGKILL dies with it.
func TestBuildStageCannotReachFabu(t *testing.T) {
	for _, mode := range []string{"up", "six"} {
		t.Run(mode, func(t *testing.T) {
			data := t.TempDir()
			var a *api
			var builder *proc
			if mode == "up" {
				addr := freeAddr(t)
				builder = startFabu(t, "fabu up", addr, []string{"FABU_ADMIN_PASSWORD=" + adminPassword},
					"up", "--addr", addr, "--data-dir", data, "--lock-ttl", "6s")
				a = login(t, builder.url, adminPassword)
			} else {
				procs := map[string]*proc{}
				_, a, _ = sixWith(t, sixOptions{procs: procs, dataDir: data})
				builder = procs["builder"]
			}
			if mode == "up" {
				for _, f := range []string{"master.key", "ssh/id_ed25519", "fabu.db"} {
					if _, err := os.Stat(filepath.Join(data, f)); err != nil {
						t.Fatalf("the data dir lacks %s, so the test would prove nothing: %v", f, err)
					}
				}
			}
			outside := filepath.Join(os.TempDir(), fmt.Sprintf("fabu-sandbox-outside-%d", time.Now().UnixNano()))
			mark := fmt.Sprintf("77.%d%d", os.Getpid(), time.Now().UnixNano()%100000)

			r := newRepo(t)
			tg := newTarget(t)
			r.commit(map[string]string{
				"attack.sh": attackScript,
				".fabu.yml": fmt.Sprintf("stages:\n  - name: attack\n    run: [sh, attack.sh, %q, %q, %q]\nartifact:\n  dir: .\n", data, outside, mark),
			})
			applyProject(t, a, tg, r, "web-1", map[string]any{"name": "attack", "type": "static"})
			run := startRun(t, a, projectIDOf(t, a, "attack"))
			log := a.logText(run.ID)
			if run.Status != "succeeded" || !strings.Contains(log, "attack done") {
				t.Fatalf("attack run = %+v\nlog:\n%s", run, log)
			}
			if strings.Contains(log, "LEAK") || strings.Contains(log, adminPassword) {
				t.Errorf("the stage got through:\n%s", log)
			}
			if _, err := os.Stat(outside); err == nil {
				_ = os.Remove(outside)
				t.Errorf("the stage wrote %s on the host", outside)
			}
			for _, p := range []string{filepath.Join(data, "fabu-sandbox-pwned"), filepath.Join(data, "workspaces", "runs", "fabu-sandbox-pwned")} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("the stage wrote %s", p)
				}
			}
			waitFor(t, 10*time.Second, "no process of the finished stage left", func() (bool, error) {
				return len(testenv.PIDsOf("sleep "+mark)) == 0, nil
			})

			// A stage still running when the builder dies by SIGKILL dies with it.
			r.commit(map[string]string{".fabu.yml": fmt.Sprintf("stages:\n  - name: attack\n    run: [sh, attack.sh, %q, %q, %q, wait]\nartifact:\n  dir: .\n", data, outside, mark)})
			var started runView
			a.must(http.StatusCreated, "POST", "/api/v1/projects/"+projectIDOf(t, a, "attack")+"/runs", nil, &started)
			waitFor(t, 60*time.Second, "the stage's processes running", func() (bool, error) {
				return len(testenv.PIDsOf("sleep "+mark)) == 2, nil
			})
			if err := builder.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-builder.done
			waitFor(t, 10*time.Second, "no stage process outliving the killed builder", func() (bool, error) {
				return len(testenv.PIDsOf("sleep "+mark)) == 0, nil
			})
		})
	}
}
