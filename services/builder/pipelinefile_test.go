package builder

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReleaseLeavesOutPipelineFile: a static project's release is its source dir, where
// .fabu.yml lives; the file says how fabu builds and is no content of the site, so the
// artifact leaves it out (at any depth: a sub-project's too) and keeps everything else.
func TestReleaseLeavesOutPipelineFile(t *testing.T) {
	e := newEnv(t, backends[0])
	e.buildProject("p1", "static", "site", "s1", nil)
	e.repo.commit("main", map[string]string{
		"site/.fabu.yml":      "stages: []\nartifact: {dir: .}\n",
		"site/index.html":     "home",
		"site/sub/.fabu.yml":  "stages: []\n",
		"site/sub/page.html":  "page",
		"site/.fabu.yml.html": "a page whose name only starts like it",
	})
	e.start(e.config(""), e.co)
	id, _ := e.buildAndDeploy("p1", "main")
	out := unpacked(t, e.builtEvent(id).ArtifactPath)
	for _, gone := range []string{".fabu.yml", "sub/.fabu.yml"} {
		if _, err := os.Lstat(filepath.Join(out, gone)); !os.IsNotExist(err) {
			t.Errorf("release contains %s (%v)", gone, err)
		}
	}
	for _, kept := range []string{"index.html", "sub/page.html", ".fabu.yml.html"} {
		if _, err := os.Stat(filepath.Join(out, kept)); err != nil {
			t.Errorf("release lacks %s: %v", kept, err)
		}
	}
}
