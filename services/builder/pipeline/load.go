package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"fabu.dev/libs/apperr"
)

// ProjectSettings are a project's build settings as configured in fabu.
type ProjectSettings struct {
	Type      string // the recipe; "" is "static"
	SourceDir string // the project's directory in the repository; "" is the root
	Profile   string
	Script    string // frontend: the package.json script (default "build")
	OutputDir string // frontend: what the script writes (default "dist")
	Image     string // docker: the repository to push to
	Commit    string // the commit being built (docker tags the image with it)
	// ContainerCLI is the container CLI docker builds run (the builder's setting).
	ContainerCLI string
	Env          map[string]string
	// Pipeline is the project's configured pipeline in the JSON form of File (see
	// ParseJSON); empty means none. A .fabu.yml in the repository takes precedence.
	Pipeline []byte
}

// Load decides how the checkout at checkoutDir is built. The pipeline is, in order of
// precedence, <source dir>/.fabu.yml in the checkout, the project's configured pipeline,
// or nothing; what it leaves out comes from the recipe (the file's recipe, else the
// project's type). Every error is an apperr invalid error; a pipeline's errors name the
// file, the line and the reason.
func Load(checkoutDir string, project ProjectSettings) (Plan, error) {
	src := path.Clean(orDot(project.SourceDir))
	if err := checkDir(src); err != nil {
		return Plan{}, apperr.Invalid("source dir: %v", err)
	}
	f, err := loadFile(checkoutDir, src, project.Pipeline)
	if err != nil {
		return Plan{}, err
	}
	recipe := firstOf(f.Recipe, project.Type, "static")
	base, err := Recipe(recipe, RecipeOptions{
		Root: checkoutDir, SourceDir: src, Profile: firstOf(f.Profile, project.Profile),
		Script: project.Script, OutputDir: project.OutputDir, Image: project.Image, Commit: project.Commit,
		CLI: project.ContainerCLI,
	})
	if err != nil && !(isDetect(err) && f.Stages != nil) {
		return Plan{}, apperr.Wrap(err, apperr.CodeInvalid, "build plan")
	}
	detectErr := err

	plan := Plan{Recipe: recipe, Stages: base.Stages, Artifact: base.Artifact, Caches: base.Caches}
	plan.Env = merge(project.Env, f.Env)
	if f.Stages != nil {
		plan.Stages = make([]Stage, 0, len(f.Stages))
		for i, fst := range f.Stages {
			st, err := f.stage(i, fst, base, src, detectErr)
			if err != nil {
				return Plan{}, f.wrap(err)
			}
			plan.Stages = append(plan.Stages, st)
		}
	}
	if a := f.Artifact; a != nil {
		if a.Dir != "" {
			plan.Artifact = ArtifactSpec{Kind: KindDir, Path: path.Join(src, a.Dir)}
		} else {
			plan.Artifact = ArtifactSpec{Kind: KindFile, Path: path.Join(src, a.File)}
		}
	}
	if f.Caches != nil {
		plan.Caches = nil
		for i, c := range f.Caches {
			keyFile := path.Join(src, c.Key)
			key, err := cacheKey(checkoutDir, "file", keyFile)
			if err != nil {
				return Plan{}, f.wrap(f.errAt(fmt.Sprintf("caches[%d].key", i), "cannot read %s: %v", keyFile, unwrapPath(err)))
			}
			cache := Cache{Key: key}
			for _, p := range c.Paths {
				if !strings.HasPrefix(p, "~/") {
					p = path.Join(src, p)
				}
				cache.Paths = append(cache.Paths, p)
			}
			plan.Caches = append(plan.Caches, cache)
		}
	}
	if err := plan.Validate(); err != nil {
		return Plan{}, apperr.Wrap(err, apperr.CodeInvalid, "build plan")
	}
	return plan, nil
}

// loadFile reads the pipeline: .fabu.yml if the checkout has one, else the project's.
func loadFile(root, src string, configured []byte) (File, error) {
	name := path.Join(src, FileName)
	full, err := inside(root, name)
	switch {
	case err == nil:
		fi, err := os.Stat(full)
		if err != nil || !fi.Mode().IsRegular() {
			return File{}, apperr.Invalid("%s is not a regular file", name)
		}
		if fi.Size() > maxFileSize {
			return File{}, apperr.Invalid("%s is %d bytes, at most %d allowed", name, fi.Size(), maxFileSize)
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return File{}, fmt.Errorf("read %s: %w", name, err)
		}
		f, err := ParseYAML(data)
		f.source = name
		if err != nil {
			return File{}, f.wrap(err)
		}
		return f, nil
	case errors.Is(err, fs.ErrPermission):
		return File{}, apperr.Invalid("%s: %v", name, err)
	case len(configured) > 0:
		f, err := ParseJSON(configured)
		f.source = "project pipeline"
		if err != nil {
			return File{}, f.wrap(err)
		}
		return f, nil
	}
	return File{}, nil
}

// stage turns the file's i-th stage into a plan stage; one without a command takes the
// recipe's stage of its name.
func (f *File) stage(i int, fst FileStage, base Plan, src string, detectErr error) (Stage, error) {
	st := Stage{Name: fst.Name, Command: fst.Run.Argv, Dir: path.Join(src, fst.Dir), Env: fst.Env, Timeout: DefaultTimeout, Secrets: fst.Secrets, Image: fst.Image}
	if !fst.Run.Given() {
		idx := -1
		for j, b := range base.Stages {
			if b.Name == fst.Name {
				idx = j
			}
		}
		if idx < 0 {
			if detectErr != nil {
				return Stage{}, f.errAt(fmt.Sprintf("stages[%d]", i), "no run, and the %s recipe has no default stage: %v", base.Recipe, detectErr)
			}
			var names []string
			for _, b := range base.Stages {
				names = append(names, b.Name)
			}
			return Stage{}, f.errAt(fmt.Sprintf("stages[%d]", i), "no run, and the recipe has no stage %q to take it from (its stages: %s)", fst.Name, strings.Join(names, ", "))
		}
		b := base.Stages[idx]
		st.Command, st.Timeout, st.Env = b.Command, b.Timeout, merge(b.Env, fst.Env)
		st.Engine = b.Engine && fst.Image == "" // the recipe's own engine command, unchanged
		if fst.Dir == "" {
			st.Dir = b.Dir
		}
	}
	if fst.Timeout != "" {
		d, err := parseTimeout(fst.Timeout)
		if err != nil {
			return Stage{}, f.errAt(fmt.Sprintf("stages[%d].timeout", i), "%v", err)
		}
		st.Timeout = d
	}
	return st, nil
}

// wrap makes a pipeline error an apperr invalid error naming the pipeline's source.
func (f *File) wrap(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) && pe.File == "" {
		pe.File = f.source
	}
	return apperr.Wrap(err, apperr.CodeInvalid, "invalid pipeline")
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func merge(a, b map[string]string) map[string]string {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
