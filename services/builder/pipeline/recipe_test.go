package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/services/builder/execx"
)

// tree writes files (path → content) under a new directory and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		full := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "gradlew") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestRecipeDetection(t *testing.T) {
	tests := []struct {
		name     string
		recipe   string
		files    map[string]string
		opts     RecipeOptions
		stages   [][]string
		artifact ArtifactSpec
		caches   [][]string
	}{
		{"static", "static", map[string]string{"public/index.html": "x"}, RecipeOptions{SourceDir: "public"},
			nil, ArtifactSpec{KindDir, "public"}, nil},
		{"maven jar with profile", "java-jar", map[string]string{"pom.xml": "<project/>"}, RecipeOptions{Profile: "prod"},
			[][]string{{"mvn", "-B", "-q", "-P", "prod", "-DskipTests", "package"}}, ArtifactSpec{KindFile, "target/*.jar"}, [][]string{{"~/.m2/repository"}}},
		{"maven war in a subdir", "java-war", map[string]string{"svc/pom.xml": "<project/>"}, RecipeOptions{SourceDir: "svc"},
			[][]string{{"mvn", "-B", "-q", "-DskipTests", "package"}}, ArtifactSpec{KindFile, "svc/target/*.war"}, [][]string{{"~/.m2/repository"}}},
		{"gradle wrapper", "java-jar", map[string]string{"build.gradle": "", "gradlew": "#!/bin/sh\n"}, RecipeOptions{},
			[][]string{{"./gradlew", "--no-daemon", "build", "-x", "test"}}, ArtifactSpec{KindFile, "build/libs/*.jar"}, [][]string{{"~/.gradle/caches", "~/.gradle/wrapper"}}},
		{"gradle kts without wrapper", "java-war", map[string]string{"build.gradle.kts": ""}, RecipeOptions{Profile: "test"},
			[][]string{{"gradle", "--no-daemon", "-Pprofile=test", "build", "-x", "test"}}, ArtifactSpec{KindFile, "build/libs/*.war"}, [][]string{{"~/.gradle/caches", "~/.gradle/wrapper"}}},
		{"npm", "frontend", map[string]string{"package.json": "{}", "package-lock.json": "{}"}, RecipeOptions{},
			[][]string{{"npm", "ci", "--no-audit", "--no-fund"}, {"npm", "run", "build"}}, ArtifactSpec{KindDir, "dist"}, [][]string{{"~/.npm"}}}, // npm ci removes node_modules
		{"yarn with script and output", "frontend", map[string]string{"web/package.json": "{}", "web/yarn.lock": ""}, RecipeOptions{SourceDir: "web", Script: "build:prod", OutputDir: "out"},
			[][]string{{"yarn", "install", "--frozen-lockfile"}, {"yarn", "run", "build:prod"}}, ArtifactSpec{KindDir, "web/out"}, [][]string{{"~/.cache/yarn"}, {"web/node_modules"}}},
		{"pnpm wins over a stale npm lock", "frontend", map[string]string{"package.json": "{}", "pnpm-lock.yaml": "", "package-lock.json": "{}"}, RecipeOptions{},
			[][]string{{"pnpm", "install", "--frozen-lockfile"}, {"pnpm", "run", "build"}}, ArtifactSpec{KindDir, "dist"}, [][]string{{"~/.local/share/pnpm/store"}, {"node_modules"}}},
		{"npm without a lockfile", "frontend", map[string]string{"package.json": "{}"}, RecipeOptions{},
			[][]string{{"npm", "install", "--no-audit", "--no-fund"}, {"npm", "run", "build"}}, ArtifactSpec{KindDir, "dist"}, [][]string{{"~/.npm"}, {"node_modules"}}},
		{"nodejs", "nodejs", map[string]string{"app/package.json": "{}", "app/package-lock.json": "{}"}, RecipeOptions{SourceDir: "app"},
			[][]string{{"npm", "ci", "--omit=dev", "--no-audit", "--no-fund"}}, ArtifactSpec{KindDir, "app"}, [][]string{{"~/.npm"}}},
		{"docker", "docker", map[string]string{"Dockerfile": "FROM scratch\n"}, RecipeOptions{Image: "registry.example.com:5000/team/app", Commit: "0123456789abcdef0123456789abcdef01234567"},
			[][]string{{"docker", "build", "-f", "Dockerfile", "-t", "registry.example.com:5000/team/app:0123456789ab", "."}},
			ArtifactSpec{KindImage, "registry.example.com:5000/team/app:0123456789ab"}, nil},
		{"docker with podman", "docker", map[string]string{"Dockerfile": "FROM scratch\n"}, RecipeOptions{Image: "127.0.0.1:5000/app", Commit: "abcdef1", CLI: "podman"},
			[][]string{{"podman", "build", "-f", "Dockerfile", "-t", "127.0.0.1:5000/app:abcdef1", "."}},
			ArtifactSpec{KindImage, "127.0.0.1:5000/app:abcdef1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Root = tree(t, tt.files)
			p, err := Recipe(tt.recipe, tt.opts)
			if err != nil {
				t.Fatalf("Recipe: %v", err)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("recipe plan invalid: %v", err)
			}
			var got [][]string
			for _, s := range p.Stages {
				got = append(got, s.Command)
			}
			if !slices.EqualFunc(got, tt.stages, slices.Equal) {
				t.Errorf("stages = %q, want %q", got, tt.stages)
			}
			if p.Artifact != tt.artifact {
				t.Errorf("artifact = %+v, want %+v", p.Artifact, tt.artifact)
			}
			var caches [][]string
			for _, c := range p.Caches {
				caches = append(caches, c.Paths)
			}
			if !slices.EqualFunc(caches, tt.caches, slices.Equal) {
				t.Errorf("caches = %q, want %q", caches, tt.caches)
			}
		})
	}
}

func TestRecipeDetectionFailures(t *testing.T) {
	for _, tt := range []struct{ recipe, want string }{
		{"java-jar", "java-jar: no pom.xml, build.gradle or build.gradle.kts in .: add it, or give stages in .fabu.yml"},
		{"frontend", "frontend: no package.json in .: add it, or give stages in .fabu.yml"},
		{"nodejs", "nodejs: no package.json in .: add it, or give stages in .fabu.yml"},
		{"docker", "docker: no Dockerfile in .: add it, or give stages in .fabu.yml"},
	} {
		_, err := Recipe(tt.recipe, RecipeOptions{Root: t.TempDir(), Image: "registry.example.com/app", Commit: "abcdef1"})
		var de *DetectError
		if !errors.As(err, &de) || err.Error() != tt.want {
			t.Errorf("Recipe(%s) error = %v, want %q", tt.recipe, err, tt.want)
		}
	}
	for _, image := range []string{"registry.example.com/app:latest", "app", "registry.example.com/App", "registry.example.com/app;rm", "-registry/app"} {
		if _, err := Recipe("docker", RecipeOptions{Root: t.TempDir(), Image: image, Commit: "abcdef1"}); err == nil || !strings.Contains(err.Error(), "image repository") {
			t.Errorf("docker image %q: error = %v, want it refused", image, err)
		}
	}
	if _, err := Recipe("docker", RecipeOptions{Root: t.TempDir(), Image: "registry.example.com/app", Commit: "abcdef1", CLI: "sh"}); err == nil || !strings.Contains(err.Error(), "docker cli") {
		t.Errorf("docker with cli sh: error = %v, want it refused", err)
	}
}

func TestCacheKeysFollowTheLockfile(t *testing.T) {
	// yarn: a package cache and node_modules, both keyed by yarn.lock.
	root := tree(t, map[string]string{"package.json": "{}", "yarn.lock": `{"v":1}`})
	a, _ := Recipe("frontend", RecipeOptions{Root: root})
	b, _ := Recipe("frontend", RecipeOptions{Root: root})
	if a.Caches[0].Key != b.Caches[0].Key || a.Caches[0].Key == a.Caches[1].Key {
		t.Fatalf("keys %s %s / %s: want stable, and distinct per cache", a.Caches[0].Key, b.Caches[0].Key, a.Caches[1].Key)
	}
	if err := os.WriteFile(filepath.Join(root, "yarn.lock"), []byte(`{"v":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := Recipe("frontend", RecipeOptions{Root: root})
	if c.Caches[0].Key == a.Caches[0].Key {
		t.Errorf("cache key did not change with the lockfile")
	}
}

func TestLoad(t *testing.T) {
	pom := map[string]string{"pom.xml": "<project/>"}
	t.Run("recipe defaults", func(t *testing.T) {
		p, err := Load(tree(t, pom), ProjectSettings{Type: "java-jar", Profile: "prod", Env: map[string]string{"A": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Stages) != 1 || !slices.Contains(p.Stages[0].Command, "prod") || p.Env["A"] != "1" || p.Stages[0].Timeout != DefaultTimeout {
			t.Errorf("plan = %+v", p)
		}
	})
	t.Run("project pipeline reorders, reuses and adds stages", func(t *testing.T) {
		root := tree(t, map[string]string{"package.json": "{}", "package-lock.json": "{}"})
		p, err := Load(root, ProjectSettings{Type: "frontend", Pipeline: []byte(`{"stages":[
			{"name":"lint","run":"npm run lint","timeout":"2m"},
			{"name":"install"},
			{"name":"build","env":{"NODE_ENV":"production"}}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range p.Stages {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, []string{"lint", "install", "build"}) || p.Stages[0].Timeout != 2*time.Minute ||
			!slices.Equal(p.Stages[1].Command, []string{"npm", "ci", "--no-audit", "--no-fund"}) || p.Stages[2].Env["NODE_ENV"] != "production" {
			t.Errorf("plan = %+v", p)
		}
	})
	t.Run(".fabu.yml beats the project pipeline", func(t *testing.T) {
		root := tree(t, map[string]string{"web/.fabu.yml": "recipe: static\nartifact:\n  dir: public\n", "web/public/index.html": "x"})
		p, err := Load(root, ProjectSettings{Type: "frontend", SourceDir: "web", Pipeline: []byte(`{"recipe":"nodejs"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if p.Recipe != "static" || p.Artifact != (ArtifactSpec{KindDir, "web/public"}) || len(p.Stages) != 0 {
			t.Errorf("plan = %+v", p)
		}
	})
	t.Run("errors name the file and line", func(t *testing.T) {
		root := tree(t, map[string]string{".fabu.yml": "stages:\n  - name: a\n    run: make\n    timeout: soon\n"})
		_, err := Load(root, ProjectSettings{Type: "static"})
		if !apperr.Is(err, apperr.CodeInvalid) || err.Error() != `invalid pipeline: .fabu.yml: line 4: stages[0].timeout: invalid duration "soon" (write e.g. 90s, 10m, 1h30m)` {
			t.Errorf("error = %v", err)
		}
		_, err = Load(t.TempDir(), ProjectSettings{Pipeline: []byte(`{"stages":[{"name":"x"}]}`)})
		if err == nil || err.Error() != `invalid pipeline: project pipeline: line 1: stages[0]: no run, and the recipe has no stage "x" to take it from (its stages: )` {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("missing build file without stages fails clearly", func(t *testing.T) {
		_, err := Load(t.TempDir(), ProjectSettings{Type: "java-war"})
		if !apperr.Is(err, apperr.CodeInvalid) || !strings.Contains(err.Error(), "no pom.xml") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("cache key file must exist", func(t *testing.T) {
		root := tree(t, map[string]string{".fabu.yml": "caches:\n  - key: pom.xml\n    paths: [~/.m2]\n"})
		_, err := Load(root, ProjectSettings{})
		if err == nil || !strings.Contains(err.Error(), ".fabu.yml: line 2: caches[0].key: cannot read pom.xml") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("a .fabu.yml symlinked out of the checkout is refused", func(t *testing.T) {
		root := t.TempDir()
		outside := filepath.Join(t.TempDir(), "evil.yml")
		if err := os.WriteFile(outside, []byte("recipe: static\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, ".fabu.yml")); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(root, ProjectSettings{}); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("error = %v, want invalid", err)
		}
	})
}

func TestFingerprint(t *testing.T) {
	base := Plan{Recipe: "frontend", Env: map[string]string{"A": "1", "B": "2"},
		Stages:   []Stage{{Name: "build", Command: []string{"npm", "run", "build"}, Timeout: time.Minute}},
		Artifact: ArtifactSpec{KindDir, "dist"}}
	same := base
	same.Env = map[string]string{"B": "2", "A": "1"}
	same.Stages = []Stage{{Name: "compile", Command: []string{"npm", "run", "build"}, Dir: ".", Timeout: time.Hour}}
	same.Caches = []Cache{{Key: strings.Repeat("a", 64), Paths: []string{"~/.npm"}}}
	if base.Fingerprint() != same.Fingerprint() {
		t.Errorf("names, timeouts, caches and map order changed the fingerprint")
	}
	for name, change := range map[string]func(p *Plan){
		"command":  func(p *Plan) { p.Stages = []Stage{{Name: "build", Command: []string{"npm", "run", "build:prod"}}} },
		"env":      func(p *Plan) { p.Env = map[string]string{"A": "2", "B": "2"} },
		"artifact": func(p *Plan) { p.Artifact.Path = "out" },
		"recipe":   func(p *Plan) { p.Recipe = "nodejs" },
	} {
		p := base
		change(&p)
		if p.Fingerprint() == base.Fingerprint() {
			t.Errorf("changing the %s kept the fingerprint", name)
		}
	}
}

func TestDockerWithoutDaemonFailsClearly(t *testing.T) {
	docker := "docker"
	if _, err := os.Stat("/usr/local/bin/docker"); err != nil {
		t.Skip("no docker CLI on this machine: install docker.io's CLI to run this test")
	}
	root := tree(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n"})
	p, err := Load(root, ProjectSettings{Type: "docker", Image: "registry.example.com/team/app", Commit: "abcdef1"})
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stages[0]
	_, err = execx.Run(context.Background(), execx.Spec{Name: st.Name, Argv: st.Command, Root: root, Dir: st.Dir,
		Home: t.TempDir(), Path: "/usr/local/bin:/usr/bin:/bin", Env: map[string]string{"DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "none.sock")},
		Timeout: time.Minute})
	var xe *execx.ExitError
	if !errors.As(err, &xe) || !strings.Contains(err.Error(), "stage build: exit status 1: ") ||
		!strings.Contains(strings.ToLower(err.Error()), "docker daemon") {
		t.Errorf("%s build without a daemon: error = %v, want an exit error naming the docker daemon", docker, err)
	}
}
