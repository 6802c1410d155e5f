package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/container"
)

// RecipeOptions are the project settings a recipe's defaults depend on.
type RecipeOptions struct {
	// Root is the checkout (absolute); recipes look at its files to choose a tool and to
	// key caches.
	Root string
	// SourceDir is the project's directory in the repository ("" or "." for the root).
	SourceDir string
	// Profile selects a Maven profile (-P) or sets Gradle's "profile" property.
	Profile string
	// Script is the package.json script a frontend build runs (default "build"), and
	// OutputDir the directory it writes (default "dist"), relative to SourceDir.
	Script    string
	OutputDir string
	// Image is the repository a docker build pushes to (without a tag) and Commit the
	// commit it is tagged with.
	Image  string
	Commit string
	// CLI is the container CLI a docker build runs: docker (default), podman, or an
	// absolute path to one of them.
	CLI string
}

// DetectError says that a recipe found nothing it knows how to build. Load tolerates it
// when a pipeline gives its own stages.
type DetectError struct {
	Recipe string
	Dir    string
	Reason string
}

func (e *DetectError) Error() string {
	return fmt.Sprintf("%s: %s in %s: add it, or give stages in %s", e.Recipe, e.Reason, e.Dir, FileName)
}

type recipeFunc func(o RecipeOptions, src string) (Plan, error)

var recipes map[string]recipeFunc

func init() { // a map literal referring to functions that use recipes would be a cycle
	recipes = map[string]recipeFunc{
		"static":   staticRecipe,
		"java-jar": func(o RecipeOptions, src string) (Plan, error) { return javaRecipe(o, src, "jar") },
		"java-war": func(o RecipeOptions, src string) (Plan, error) { return javaRecipe(o, src, "war") },
		"frontend": frontendRecipe,
		"nodejs":   nodejsRecipe,
		"docker":   dockerRecipe,
	}
}

// RecipeNames lists the recipes, sorted.
func RecipeNames() []string {
	names := make([]string, 0, len(recipes))
	for n := range recipes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Recipe returns the default plan of recipe name for the checkout in opts.Root. When the
// checkout lacks what the recipe needs (a pom.xml, a package.json, a Dockerfile), the
// error is a *DetectError and the plan still holds the recipe's artifact default.
func Recipe(name string, opts RecipeOptions) (Plan, error) {
	fn, ok := recipes[name]
	if !ok {
		return Plan{}, fmt.Errorf("unknown recipe %q (known: %s)", name, strings.Join(RecipeNames(), ", "))
	}
	src := path.Clean(orDot(opts.SourceDir))
	if err := checkDir(src); err != nil {
		return Plan{}, fmt.Errorf("source dir: %w", err)
	}
	if opts.Profile != "" && !profileRE.MatchString(opts.Profile) {
		return Plan{}, fmt.Errorf("invalid profile %q", opts.Profile)
	}
	p, err := fn(opts, src)
	p.Recipe = name
	for i := range p.Stages {
		if p.Stages[i].Timeout == 0 {
			p.Stages[i].Timeout = DefaultTimeout
		}
	}
	return p, err
}

func staticRecipe(_ RecipeOptions, src string) (Plan, error) {
	return Plan{Stages: []Stage{}, Artifact: ArtifactSpec{Kind: KindDir, Path: src}}, nil
}

func javaRecipe(o RecipeOptions, src, ext string) (Plan, error) {
	has := func(name string) bool { return isFile(o.Root, path.Join(src, name)) }
	switch {
	case has("pom.xml"):
		argv := []string{"mvn", "-B", "-q"}
		if o.Profile != "" {
			argv = append(argv, "-P", o.Profile)
		}
		argv = append(argv, "-DskipTests", "package")
		p := Plan{
			Stages:   []Stage{{Name: "package", Command: argv, Dir: src}},
			Artifact: ArtifactSpec{Kind: KindFile, Path: path.Join(src, "target/*."+ext)},
		}
		return withCache(p, o.Root, "maven", path.Join(src, "pom.xml"), "~/.m2/repository"), nil
	case has("build.gradle") || has("build.gradle.kts"):
		argv := []string{"gradle"}
		if has("gradlew") {
			argv = []string{"./gradlew"}
		}
		argv = append(argv, "--no-daemon")
		if o.Profile != "" {
			argv = append(argv, "-Pprofile="+o.Profile)
		}
		argv = append(argv, "build", "-x", "test")
		p := Plan{
			Stages:   []Stage{{Name: "build", Command: argv, Dir: src}},
			Artifact: ArtifactSpec{Kind: KindFile, Path: path.Join(src, "build/libs/*."+ext)},
		}
		key := "build.gradle"
		if !has(key) {
			key = "build.gradle.kts"
		}
		return withCache(p, o.Root, "gradle", path.Join(src, key), "~/.gradle/caches", "~/.gradle/wrapper"), nil
	}
	return Plan{Artifact: ArtifactSpec{Kind: KindFile, Path: path.Join(src, "target/*."+ext)}},
		&DetectError{Recipe: "java-" + ext, Dir: src, Reason: "no pom.xml, build.gradle or build.gradle.kts"}
}

// nodePM is the package manager a lockfile asks for.
type nodePM struct {
	name, lock string
	install    []string // with the lockfile, frozen
	prod       []string // production dependencies only
	cache      string
}

var nodePMs = []nodePM{
	{"pnpm", "pnpm-lock.yaml", []string{"pnpm", "install", "--frozen-lockfile"}, []string{"pnpm", "install", "--frozen-lockfile", "--prod"}, "~/.local/share/pnpm/store"},
	{"yarn", "yarn.lock", []string{"yarn", "install", "--frozen-lockfile"}, []string{"yarn", "install", "--frozen-lockfile", "--production"}, "~/.cache/yarn"},
	{"npm", "package-lock.json", []string{"npm", "ci", "--no-audit", "--no-fund"}, []string{"npm", "ci", "--omit=dev", "--no-audit", "--no-fund"}, "~/.npm"},
}

// detectNode chooses the package manager by lockfile; without one it is npm install.
func detectNode(o RecipeOptions, src, recipe string) (nodePM, error) {
	if !isFile(o.Root, path.Join(src, "package.json")) {
		return nodePM{}, &DetectError{Recipe: recipe, Dir: src, Reason: "no package.json"}
	}
	for _, pm := range nodePMs {
		if isFile(o.Root, path.Join(src, pm.lock)) {
			return pm, nil
		}
	}
	return nodePM{name: "npm", lock: "package.json",
		install: []string{"npm", "install", "--no-audit", "--no-fund"},
		prod:    []string{"npm", "install", "--omit=dev", "--no-audit", "--no-fund"}, cache: "~/.npm"}, nil
}

func frontendRecipe(o RecipeOptions, src string) (Plan, error) {
	out := path.Clean(orDot(o.OutputDir))
	if o.OutputDir == "" {
		out = "dist"
	}
	if err := checkDir(out); err != nil || out == "." {
		return Plan{}, fmt.Errorf("output dir %q: must be a directory inside the source dir", o.OutputDir)
	}
	script := o.Script
	if script == "" {
		script = "build"
	}
	if !nameRE.MatchString(script) && !strings.Contains(script, ":") {
		return Plan{}, fmt.Errorf("invalid script name %q", script)
	}
	p := Plan{Artifact: ArtifactSpec{Kind: KindDir, Path: path.Join(src, out)}}
	pm, err := detectNode(o, src, "frontend")
	if err != nil {
		return p, err
	}
	p.Stages = []Stage{
		{Name: "install", Command: pm.install, Dir: src},
		{Name: "build", Command: []string{pm.name, "run", script}, Dir: src},
	}
	lock := path.Join(src, pm.lock)
	p = withCache(p, o.Root, pm.name+"-cache", lock, pm.cache)
	if pm.reinstallsModules() {
		// Restoring node_modules would be wasted work: npm ci deletes it before installing
		// (bench/REPORT.md measured 0.4–0.8 s per build for the restore and the save).
		return p, nil
	}
	return withCache(p, o.Root, "node_modules", lock, path.Join(src, "node_modules")), nil
}

// reinstallsModules reports whether the install command removes node_modules first, as
// npm ci does, so a cached node_modules could never be used.
func (pm nodePM) reinstallsModules() bool {
	return len(pm.install) > 1 && pm.install[0] == "npm" && pm.install[1] == "ci"
}

func nodejsRecipe(o RecipeOptions, src string) (Plan, error) {
	p := Plan{Artifact: ArtifactSpec{Kind: KindDir, Path: src}}
	pm, err := detectNode(o, src, "nodejs")
	if err != nil {
		return p, err
	}
	p.Stages = []Stage{{Name: "install", Command: pm.prod, Dir: src}}
	// node_modules is part of the artifact here, so it is not cached: a restored dev
	// dependency would ship.
	return withCache(p, o.Root, pm.name+"-cache", path.Join(src, pm.lock), pm.cache), nil
}

var (
	imageRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// dockerRecipe builds the source dir's Dockerfile into <image>:<commit, 12 digits> with the
// builder's container CLI (docker or podman). Pushing is not a stage: the builder pushes
// the image after the stages, with the project's registry credentials in a private auth
// file, and records its digest (docker.go).
func dockerRecipe(o RecipeOptions, src string) (Plan, error) {
	if _, _, err := container.ParseRepository(o.Image); err != nil {
		return Plan{}, fmt.Errorf("docker: %w (the project's image repository)", err)
	}
	if !commitRE.MatchString(o.Commit) {
		return Plan{}, fmt.Errorf("docker: commit %q: want a hex commit id to tag the image with", o.Commit)
	}
	cli := o.CLI
	if cli == "" {
		cli = "docker"
	}
	if err := container.ValidCLI(cli); err != nil {
		return Plan{}, fmt.Errorf("docker: %w", err)
	}
	ref := o.Image + ":" + o.Commit[:min(12, len(o.Commit))]
	p := Plan{
		Stages:   []Stage{{Name: "build", Command: []string{cli, "build", "-f", "Dockerfile", "-t", ref, "."}, Dir: src, Engine: true}},
		Artifact: ArtifactSpec{Kind: KindImage, Path: ref},
	}
	if !isFile(o.Root, path.Join(src, "Dockerfile")) {
		return Plan{Artifact: p.Artifact}, &DetectError{Recipe: "docker", Dir: src, Reason: "no Dockerfile"}
	}
	return p, nil
}

// withCache adds a cache of paths keyed by the content of keyFile, when it exists.
func withCache(p Plan, root, kind, keyFile string, paths ...string) Plan {
	key, err := cacheKey(root, kind, keyFile)
	if err == nil {
		p.Caches = append(p.Caches, Cache{Key: key, Paths: paths})
	}
	return p
}

// cacheKey is the sha256 of kind and keyFile's content, so two kinds of cache keyed by one
// lockfile never share a key.
func cacheKey(root, kind, keyFile string) (string, error) {
	full, err := inside(root, keyFile)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "fabu-cache-v1\x00%s\x00%s\x00", kind, keyFile)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inside resolves rel under root and refuses a result that symbolic links lead outside.
func inside(root, rel string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realRoot, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	if r, err := filepath.Rel(realRoot, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("%s leads outside the checkout: %w", rel, fs.ErrPermission)
	}
	return real, nil
}

func isFile(root, rel string) bool {
	full, err := inside(root, rel)
	if err != nil {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.Mode().IsRegular()
}

// isDetect reports whether err is a *DetectError.
func isDetect(err error) bool {
	var de *DetectError
	return errors.As(err, &de)
}

// Resolve finds the artifact a's stages left in the checkout at root and returns its
// absolute path: the directory, or the one file the glob matches. A glob matching no file
// or several is an error that lists what it found.
func (a ArtifactSpec) Resolve(root string) (string, error) {
	switch a.Kind {
	case KindDir:
		full, err := inside(root, a.Path)
		if errors.Is(err, fs.ErrPermission) {
			return "", apperr.Invalid("artifact dir %q leads outside the checkout (a symlink?); it is not packaged", a.Path)
		}
		if err != nil {
			return "", apperr.Invalid("artifact dir %q does not exist after the build", a.Path)
		}
		if fi, err := os.Stat(full); err != nil || !fi.IsDir() {
			return "", apperr.Invalid("artifact %q is not a directory", a.Path)
		}
		return full, nil
	case KindFile:
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(a.Path)))
		if err != nil {
			return "", apperr.Invalid("artifact glob %q: %v", a.Path, err)
		}
		var files, outside []string
		for _, m := range matches {
			full, err := inside(root, mustRel(root, m))
			if errors.Is(err, fs.ErrPermission) {
				outside = append(outside, mustRel(root, m))
				continue
			}
			if err == nil {
				if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
					files = append(files, full)
				}
			}
		}
		switch {
		case len(files) == 1:
			return files[0], nil
		case len(files) == 0 && len(outside) > 0:
			return "", apperr.Invalid("artifact glob %q matches no file inside the checkout; %s lead(s) outside it (a symlink?)", a.Path, strings.Join(outside, ", "))
		case len(files) == 0:
			return "", apperr.Invalid("artifact glob %q matches no file", a.Path)
		}
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = filepath.Base(f)
		}
		return "", apperr.Invalid("artifact glob %q matches %d files (%s); make it match exactly one", a.Path, len(files), strings.Join(names, ", "))
	}
	return "", apperr.Invalid("artifact kind %q has no file to resolve", a.Kind)
}

func mustRel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}
