package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Caches keyed by a lockfile are restored before the stages of a later build: one in the
// checkout (node_modules) and one in the run's HOME. A changed lockfile starts cold.
func TestCachesRestoredByLockfile(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		e.buildProject("p1", "static", ".", "s1", nil)
		e.repo.commit("main", map[string]string{
			".fabu.yml": `stages:
  - {name: install, run: sh install.sh}
artifact:
  dir: out
caches:
  - key: deps.lock
    paths: [node_modules, ~/.tool]
`,
			"deps.lock": "v1\n",
			"install.sh": `mkdir -p out
if [ -f node_modules/.cache/warm ] && [ -f "$HOME/.tool/warm" ]; then
  echo hit > out/cache
else
  echo miss > out/cache
  mkdir -p node_modules/.cache "$HOME/.tool"
  echo warm > node_modules/.cache/warm
  echo warm > "$HOME/.tool/warm"
fi
echo "cache: $(cat out/cache)"
`,
		})
		e.start(e.config(""), e.co)

		cacheOf := func(id string) string {
			t.Helper()
			r := e.run(id)
			got, err := os.ReadFile(filepath.Join(unpacked(t, r.ArtifactPath), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(got))
		}
		id1, _ := e.buildAndDeploy("p1", "main")
		if got := cacheOf(id1); got != "miss" {
			t.Fatalf("first build found a cache (%s)", got)
		}
		if log := e.logOf(id1); !strings.Contains(log, "saved 2 paths") {
			t.Errorf("first build's log does not say it saved the cache:\n%s", log)
		}

		// A new commit with the same lockfile: the stage runs and finds both paths.
		e.repo.commit("main", map[string]string{"README": "change"})
		id2, _ := e.buildAndDeploy("p1", "main")
		if got := cacheOf(id2); got != "hit" {
			t.Errorf("second build with the same lockfile found no cache (%s)\n%s", got, e.logOf(id2))
		}
		if log := e.logOf(id2); !strings.Contains(log, "restored 2 of 2 paths") {
			t.Errorf("second build's log does not say it restored the cache:\n%s", log)
		}

		e.repo.commit("main", map[string]string{"deps.lock": "v2\n"})
		id3, _ := e.buildAndDeploy("p1", "main")
		if got := cacheOf(id3); got != "miss" {
			t.Errorf("a build with a changed lockfile found a cache (%s)", got)
		}
	})
}
