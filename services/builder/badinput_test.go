package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/runs"
)

// processesIn lists the processes whose working directory is dir or below it.
func processesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, en := range entries {
		cwd, err := os.Readlink(filepath.Join("/proc", en.Name(), "cwd"))
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			found = append(found, en.Name()+" in "+cwd)
		}
	}
	return found
}

// Bad input fails the run with a reason that names it, runs nothing it should not, and
// leaves no checkout, run repository, temporary clone or process behind: a repository that
// does not exist, a ref that does not exist, hostile refs, artifact paths and globs that
// leave the checkout (directly or through symlinks, checked in or made by a stage), and
// globs that match no file or several.
func TestBadInputFailsTheRunClearly(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		marker := filepath.Join(t.TempDir(), "pwned")
		e.repo.commit("main", map[string]string{
			"up/.fabu.yml":         "artifact:\n  file: ../../outside.txt\n",
			"abs/.fabu.yml":        "recipe: static\nartifact:\n  dir: /etc\n",
			"upglob/.fabu.yml":     "artifact:\n  file: \"*/../../*.jar\"\n",
			"linkdir/.fabu.yml":    "artifact:\n  dir: dist\n",
			"linkfile/.fabu.yml":   "artifact:\n  file: target/*.jar\n",
			"madelink/.fabu.yml":   "stages:\n  - {name: mk, run: mkdir -p target}\n  - {name: ln, run: ln -s /etc/passwd target/app.jar}\nartifact:\n  file: target/*.jar\n",
			"none/.fabu.yml":       "artifact:\n  file: target/*.jar\n",
			"none/README":          "no jar here\n",
			"several/.fabu.yml":    "artifact:\n  file: target/*.jar\n",
			"several/target/a.jar": "a",
			"several/target/b.jar": "b",
		})
		for _, l := range []struct{ name, target string }{{"linkdir/dist", "/etc"}, {"linkfile/target/app.jar", "/etc/passwd"}} {
			p := filepath.Join(e.repo.work, l.name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(l.target, p); err != nil {
				t.Fatal(err)
			}
		}
		e.repo.commit("main", map[string]string{"README": "symlinks\n"})
		e.start(e.config(""), e.co)

		tests := []struct {
			name, dir, ref, url string
			want                []string
		}{
			{"repository that does not exist", ".", "main", "/nonexistent/nope.git", []string{"fetch repository", "git clone", "fatal: repository '/nonexistent/nope.git' does not exist"}},
			{"ref that does not exist", ".", "no-such-branch", "", []string{`git ref "no-such-branch" not found`}},
			{"ref with a semicolon", ".", "main;id", "", []string{`invalid git ref "main;id"`}},
			{"ref as an option", ".", "--upload-pack=touch " + marker, "", []string{`starts with "-"`}},
			{"ref that climbs", ".", "../../etc/passwd", "", []string{`contains ".."`}},
			{"ref with substitution", ".", "$(touch " + marker + ")", "", []string{"invalid git ref"}},
			{"artifact file outside", "up", "main", "", []string{"up/.fabu.yml", "line 2", `"../../outside.txt" must not contain ".."`}},
			{"artifact dir absolute", "abs", "main", "", []string{"abs/.fabu.yml", "line 3", `"/etc" must be relative`}},
			{"artifact glob that climbs", "upglob", "main", "", []string{"upglob/.fabu.yml", "line 2", `must not contain ".."`}},
			{"checked-in symlink dir to /etc", "linkdir", "main", "", []string{`artifact dir "linkdir/dist" leads outside the checkout`}},
			{"checked-in symlink file to /etc/passwd", "linkfile", "main", "", []string{`artifact glob "linkfile/target/*.jar" matches no file inside the checkout`, "linkfile/target/app.jar"}},
			{"symlink made by a stage", "madelink", "main", "", []string{"matches no file inside the checkout", "madelink/target/app.jar"}},
			{"glob matching nothing", "none", "main", "", []string{`artifact glob "none/target/*.jar" matches no file`}},
			{"glob matching several", "several", "main", "", []string{"matches 2 files (a.jar, b.jar); make it match exactly one"}},
		}
		ids := map[string]string{}
		for i, tt := range tests {
			id := "bad" + string(rune('a'+i))
			e.buildProject(id, "static", tt.dir, "s1", map[string]any{"name": "app-" + id, "deploy_path": "/srv/" + id})
			if tt.url != "" {
				e.exec(`UPDATE projects SET git_url = ? WHERE id = ?`, tt.url, id)
			}
			ids[tt.name] = e.request(id, tt.ref)
		}
		for _, tt := range tests {
			r := e.waitStatus(ids[tt.name], runs.StatusFailed)
			t.Logf("%s: %s", tt.name, r.Error)
			for _, w := range tt.want {
				if !strings.Contains(r.Error, w) {
					t.Errorf("%s: error %q, want it to contain %q", tt.name, r.Error, w)
				}
			}
			if r.ArtifactPath != "" {
				t.Errorf("%s: failed run has artifact %s", tt.name, r.ArtifactPath)
			}
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Errorf("a hostile ref ran a command (%s exists)", marker)
		}
		e.noRunDirs()
		ws := filepath.Join(e.dir, "ws")
		_ = filepath.WalkDir(ws, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".clone-") {
				t.Errorf("temporary clone left behind: %s", p)
			}
			return nil
		})
		if procs := processesIn(t, e.dir); len(procs) > 0 {
			t.Errorf("processes left in the workspace: %v", procs)
		}
		if entries, err := os.ReadDir(filepath.Join(e.dir, "artifacts")); err == nil && len(entries) > 0 {
			t.Errorf("failed runs left artifacts: %v", entries)
		}
	})
}
