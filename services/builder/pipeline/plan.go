// Package pipeline decides how a commit is built: a Plan of stages (argv commands), the
// artifact they leave, the caches worth keeping and the environment. A plan comes from the
// project's recipe (its type), overridden by the stages configured for the project, or by
// a .fabu.yml in the repository. Load is the one entry point.
package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"fabu.dev/libs/cmdline"
	"fabu.dev/libs/container"
	"fabu.dev/libs/secret"
	"fabu.dev/services/builder/execx"
)

// Limits of a plan.
const (
	MaxStages      = 50
	MaxCaches      = 10
	MinTimeout     = time.Second
	MaxTimeout     = 6 * time.Hour
	DefaultTimeout = 30 * time.Minute
)

// Artifact kinds.
const (
	KindDir   = "dir"   // Path is a directory, packed as a tar.gz
	KindFile  = "file"  // Path is a glob that must match exactly one file (a jar, a war)
	KindImage = "image" // Path is a container image reference the stages pushed
)

// Plan is how one commit is built. Every path in it is slash-separated and relative to
// the checkout, except cache paths starting with "~/", which are relative to the run's
// HOME.
type Plan struct {
	Recipe   string            `json:"recipe"`
	Stages   []Stage           `json:"stages"`
	Artifact ArtifactSpec      `json:"artifact"`
	Caches   []Cache           `json:"caches,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
}

// Stage is one command of a plan.
type Stage struct {
	Name    string            `json:"name"`
	Command []string          `json:"command"` // argv
	Dir     string            `json:"dir"`     // working directory relative to the checkout
	Env     map[string]string `json:"env,omitempty"`
	Timeout time.Duration     `json:"timeout"`
	// Secrets names the build secrets the stage receives in its environment; the builder
	// fills in their values and masks them in the log.
	Secrets []string `json:"secrets,omitempty"`
	// Image, when set, runs the stage in that container image with the builder's
	// container CLI, the checkout and HOME mounted at their own paths; otherwise the
	// stage runs in the builder's sandbox.
	Image string `json:"image,omitempty"`
	// Engine marks fabu's own container-engine command (the docker recipe's build), which
	// must reach the engine and so runs outside the sandbox. Only a recipe sets it; a
	// command written in a pipeline never has it.
	Engine bool `json:"-"`
}

// ArtifactSpec says what the stages leave behind.
type ArtifactSpec struct {
	Kind string `json:"kind"` // KindDir, KindFile or KindImage
	Path string `json:"path"`
}

// Cache is a set of paths restored before and saved after the stages, under Key.
type Cache struct {
	Key   string   `json:"key"` // hex sha256 of what decides the content, e.g. a lockfile
	Paths []string `json:"paths"`
}

// StageEnv returns the environment of stage s under plan p: the plan's variables overridden by
// the stage's.
func (p Plan) StageEnv(s Stage) map[string]string {
	env := make(map[string]string, len(p.Env)+len(s.Env))
	for k, v := range p.Env {
		env[k] = v
	}
	for k, v := range s.Env {
		env[k] = v
	}
	return env
}

// Fingerprint is a hash of what decides the artifact: recipe, commands, working dirs,
// environment and the artifact spec — not stage names, timeouts or caches, which change
// how a build runs but not what it makes. Two runs of one commit whose plans have equal
// fingerprints make the same artifact, so the second may reuse the first's ("build once,
// deploy many"). Values the builder adds per run (FABU_RUN_ID …) and secrets are not in a
// plan, so they never split the fingerprint.
func (p Plan) Fingerprint() string {
	type stage struct {
		Command []string          `json:"c"`
		Dir     string            `json:"d"`
		Env     map[string]string `json:"e"`
		Secrets []string          `json:"s,omitempty"` // names; the builder mixes in the values
		Image   string            `json:"i,omitempty"`
	}
	v := struct {
		Version  int               `json:"v"`
		Recipe   string            `json:"r"`
		Stages   []stage           `json:"s"`
		Artifact ArtifactSpec      `json:"a"`
		Env      map[string]string `json:"e"`
	}{Version: 2, Recipe: p.Recipe, Artifact: p.Artifact, Env: p.Env} // 2: directory artifacts leave .fabu.yml out
	for _, s := range p.Stages {
		v.Stages = append(v.Stages, stage{Command: s.Command, Dir: path.Clean(orDot(s.Dir)), Env: s.Env, Secrets: s.Secrets, Image: s.Image})
	}
	b, err := json.Marshal(v) // map keys are sorted, so this is canonical
	if err != nil {
		panic(fmt.Sprintf("pipeline: marshal fingerprint: %v", err)) // only strings: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CheckImage checks a stage's image reference (container.ValidImageRef).
func CheckImage(ref string) error { return container.ValidImageRef(ref) }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate checks everything Load promises about a plan; a plan built by hand (by the
// SPA's preview, a test) goes through the same rules.
func (p Plan) Validate() error {
	if _, ok := recipes[p.Recipe]; !ok {
		return fmt.Errorf("unknown recipe %q (known: %s)", p.Recipe, strings.Join(RecipeNames(), ", "))
	}
	if len(p.Stages) > MaxStages {
		return fmt.Errorf("%d stages, at most %d allowed", len(p.Stages), MaxStages)
	}
	if err := checkEnv(p.Env); err != nil {
		return fmt.Errorf("env: %w", err)
	}
	seen := map[string]bool{}
	for i, s := range p.Stages {
		if err := s.validate(); err != nil {
			return fmt.Errorf("stages[%d]: %w", i, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("stages[%d]: duplicate stage name %q", i, s.Name)
		}
		seen[s.Name] = true
	}
	if err := p.Artifact.validate(); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	if len(p.Caches) > MaxCaches {
		return fmt.Errorf("%d caches, at most %d allowed", len(p.Caches), MaxCaches)
	}
	for i, c := range p.Caches {
		if err := c.validate(); err != nil {
			return fmt.Errorf("caches[%d]: %w", i, err)
		}
	}
	return nil
}

func (s Stage) validate() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("name %q: use 1-64 of A-Z a-z 0-9 . _ -", s.Name)
	}
	if err := checkCommand(s.Command); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if err := checkDir(s.Dir); err != nil {
		return fmt.Errorf("dir: %w", err)
	}
	if err := checkEnv(s.Env); err != nil {
		return fmt.Errorf("env: %w", err)
	}
	if err := checkSecrets(s.Secrets, s.Env); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if s.Timeout < MinTimeout || s.Timeout > MaxTimeout {
		return fmt.Errorf("timeout %s: must be between %s and %s", s.Timeout, MinTimeout, MaxTimeout)
	}
	if s.Image != "" {
		if s.Engine {
			return fmt.Errorf("a container engine command cannot run in an image")
		}
		return CheckImage(s.Image)
	}
	return nil
}

func (a ArtifactSpec) validate() error {
	switch a.Kind {
	case KindDir:
		return checkDir(a.Path)
	case KindFile:
		if a.Path == "" || strings.HasSuffix(a.Path, "/") {
			return fmt.Errorf("file %q: name a file or a glob of files", a.Path)
		}
		if _, err := path.Match(a.Path, ""); err != nil {
			return fmt.Errorf("file %q: bad glob", a.Path)
		}
		return checkDir(a.Path)
	case KindImage:
		if !imageRE.MatchString(a.Path) {
			return fmt.Errorf("image %q is not an image reference", a.Path)
		}
		return nil
	default:
		return fmt.Errorf("kind %q: want %s or %s", a.Kind, KindDir, KindFile)
	}
}

func (c Cache) validate() error {
	if len(c.Key) != 64 || strings.Trim(c.Key, "0123456789abcdef") != "" {
		return fmt.Errorf("key %q is not a hex sha256", c.Key)
	}
	if len(c.Paths) == 0 {
		return fmt.Errorf("no paths")
	}
	for _, p := range c.Paths {
		if err := checkCachePath(p); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
	}
	return nil
}

// checkCommand checks argv: a program, no NUL, and no shell asked to interpret a string
// (cmdline.Check, the rule the gateway applies when a pipeline is saved).
func checkCommand(argv []string) error { return cmdline.Check(argv) }

// checkDir checks a path relative to the checkout: no "..", not absolute, normalized.
func checkDir(p string) error {
	if err := execx.CheckRelPath(p); err != nil {
		return fmt.Errorf("%q %w", p, err)
	}
	if p != "" && path.Clean(p) != p {
		return fmt.Errorf("%q is not normalized (want %q)", p, path.Clean(p))
	}
	return nil
}

// checkCachePath checks "~/…" (under HOME) or a path inside the checkout.
func checkCachePath(p string) error {
	rest, home := strings.CutPrefix(p, "~/")
	if rest == "" || rest == "." {
		return fmt.Errorf("names the whole %s", map[bool]string{true: "home", false: "checkout"}[home])
	}
	return checkDir(rest)
}

// checkEnv checks declared variables: names a build may declare (cmdline.CheckEnvName:
// not HOME, PATH, FABU_* or LD_*), values without NUL.
func checkEnv(env map[string]string) error {
	for k, v := range env {
		if err := cmdline.CheckEnvName(k); err != nil {
			return err
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("variable %s: NUL byte in value", k)
		}
	}
	return nil
}

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// checkSecrets checks a stage's declared secrets: valid names, each once, none also given
// as a plain variable of the stage.
func checkSecrets(names []string, env map[string]string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if err := secret.CheckBuildSecretName(n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("secret %s is declared twice", n)
		}
		seen[n] = true
		if _, ok := env[n]; ok {
			return fmt.Errorf("%s is both a variable and a secret of the stage", n)
		}
	}
	return nil
}
