package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/cmdline"
	"fabu.dev/libs/gitref"
)

// FileName is the pipeline file looked for in the project's source dir.
const FileName = ".fabu.yml"

// maxFileSize bounds a pipeline file or a project's JSON pipeline.
const maxFileSize = 256 << 10

// File is a pipeline as written in .fabu.yml, or as the project's JSON settings (the same
// fields). Every field is optional; what is given overrides the recipe's defaults. Paths
// are relative to the directory holding the file (the project's source dir).
type File struct {
	Recipe  string            `yaml:"recipe" json:"recipe,omitempty"`
	Profile string            `yaml:"profile" json:"profile,omitempty"`
	Env     map[string]string `yaml:"env" json:"env,omitempty"`
	// Stages replaces the recipe's stages when it is not nil; an empty list means no
	// stages. A stage without run takes the command of the recipe's stage of that name,
	// so stages can be reordered or dropped without repeating commands.
	Stages   []FileStage   `yaml:"stages" json:"stages"`
	Artifact *FileArtifact `yaml:"artifact" json:"artifact,omitempty"`
	Caches   []FileCache   `yaml:"caches" json:"caches,omitempty"`
	// Merge lists branches, tags or commits merged, in order, into the run's commit before
	// it is built; when given (even empty) it replaces the project's merge refs. It is read
	// from the run's own commit, before merging (see MergeRefs).
	Merge []string `yaml:"merge" json:"merge,omitempty"`

	lines  map[string]int // path ("stages[1].timeout") → line, for errors
	source string         // where the file came from, for errors
}

// FileStage is one stage in a File.
type FileStage struct {
	Name    string            `yaml:"name" json:"name"`
	Run     Command           `yaml:"run" json:"run,omitempty"`
	Dir     string            `yaml:"dir" json:"dir,omitempty"`
	Env     map[string]string `yaml:"env" json:"env,omitempty"`
	Timeout string            `yaml:"timeout" json:"timeout,omitempty"` // a Go duration: "90s", "10m"
	// Secrets names the project's build secrets this stage receives as environment
	// variables; other stages do not see them.
	Secrets []string `yaml:"secrets" json:"secrets,omitempty"`
	// Image runs the stage in a container of that image (see Stage.Image).
	Image string `yaml:"image" json:"image,omitempty"`
}

// FileArtifact names the artifact: a dir, or a file (a glob matching exactly one file).
type FileArtifact struct {
	Dir  string `yaml:"dir" json:"dir,omitempty"`
	File string `yaml:"file" json:"file,omitempty"`
}

// FileCache is a cache: its paths ("~/…" for the run's HOME, else in the checkout), kept
// under the sha256 of the key file (a lockfile).
type FileCache struct {
	Key   string   `yaml:"key" json:"key"`
	Paths []string `yaml:"paths" json:"paths"`
}

// Command is a stage's command: a string split by cmdline.Split, or a list taken as argv.
type Command struct {
	Argv   []string
	String string // the string form, when given as one
	given  bool
}

// Given reports whether the command was given at all.
func (c Command) Given() bool { return c.given || c.Argv != nil || c.String != "" }

// UnmarshalYAML accepts a string or a list of strings.
func (c *Command) UnmarshalYAML(n *yaml.Node) error {
	c.given = true
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			c.given = false
			return nil
		}
		c.String = n.Value
		return nil
	case yaml.SequenceNode:
		var argv []string
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
				return &ParseError{Line: e.Line, Reason: "run: every element of a command list must be a string"}
			}
			argv = append(argv, e.Value)
		}
		c.Argv = argv
		if argv == nil {
			c.Argv = []string{}
		}
		return nil
	}
	return &ParseError{Line: n.Line, Reason: "run: want a string or a list of strings"}
}

// MarshalJSON writes the form the command was given in.
func (c Command) MarshalJSON() ([]byte, error) {
	if c.Argv != nil {
		return json.Marshal(c.Argv)
	}
	return json.Marshal(c.String)
}

// IsZero lets omitempty drop an absent command.
func (c Command) IsZero() bool { return !c.Given() }

// ParseError is a pipeline file's error with its line (0 when unknown), the path of the
// field ("stages[1].timeout") and the reason.
type ParseError struct {
	File   string
	Line   int
	Path   string
	Reason string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// ParseYAML parses and checks a .fabu.yml. Unknown fields, wrong types, several documents
// and every rule of a plan (names, relative dirs, timeouts, commands) are errors naming
// the line.
func ParseYAML(data []byte) (File, error) {
	if len(data) > maxFileSize {
		return File{}, &ParseError{Reason: fmt.Sprintf("file is %d bytes, at most %d allowed", len(data), maxFileSize)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return File{lines: map[string]int{}}, nil // an empty file changes nothing
		}
		return File{}, syntaxError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return File{}, syntaxError(data, err)
		}
		return File{}, &ParseError{Line: line, Reason: "more than one YAML document"}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return File{lines: map[string]int{}}, nil
	}
	if doc.Kind != yaml.MappingNode {
		return File{}, &ParseError{Line: doc.Line, Reason: "want a mapping of pipeline settings (recipe, stages, …)"}
	}
	// Strict decoding finds unknown fields and wrong types; the node walk gives every
	// field's line for the checks after it.
	var f File
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&f); err != nil {
		return File{}, yamlError(err)
	}
	f.lines = map[string]int{}
	recordLines(doc, "", f.lines)
	if _, ok := f.lines["stages"]; ok && f.Stages == nil && stagesIsList(doc) {
		f.Stages = []FileStage{}
	}
	if err := f.check(); err != nil {
		return File{}, err
	}
	return f, nil
}

// ParseJSON parses and checks a project's pipeline as stored by the API: the fields of
// .fabu.yml in JSON. Errors name the line and field like ParseYAML's.
func ParseJSON(data []byte) (File, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return File{}, &ParseError{Line: 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")), Reason: "invalid JSON: " + se.Error()}
		}
		return File{}, &ParseError{Reason: fmt.Sprintf("invalid JSON: %v", err)}
	}
	// JSON is YAML, so one decoder gives both formats the same checks and line numbers.
	return ParseYAML(data)
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns yaml.v3's errors into ParseErrors, one per line (the first).
func yamlError(err error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &ParseError{Reason: strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	reason := m[2]
	if f, ok := strings.CutPrefix(reason, "field "); ok {
		if name, _, ok := strings.Cut(f, " not found in type"); ok {
			reason = fmt.Sprintf("unknown field %q", name)
		}
	}
	reason = typeNames.Replace(reason)
	return &ParseError{Line: line, Reason: reason}
}

// syntaxError is yamlError for a syntax error of data, naming the line of the offending
// token: yaml.v3 names the line where the enclosing block starts (counted from 0 for most
// parser errors), or none. The offending line is the last line of the shortest prefix of
// data, in whole lines, that fails with the same problem: the parser reads a document
// in order, so lines after the offending one cannot make its prefix fail. A binary search
// keeps it to a few parses even for the largest file.
func syntaxError(data []byte, err error) error {
	pe := yamlError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(n int) bool {
		e := decodeAll(bytes.Join(lines[:n], nil))
		if e == nil {
			return false
		}
		return yamlError(e).Reason == pe.Reason
	}
	lo, hi := 1, len(lines)
	if !fails(hi) {
		return pe
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	pe.Line = lo
	return pe
}

// decodeAll parses every YAML document of data and returns the first error.
func decodeAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

var typeNames = strings.NewReplacer(
	"into map[string]string", "into a mapping of names to strings",
	"into []pipeline.FileStage", "into a list of stages",
	"into []pipeline.FileCache", "into a list of caches",
	"into pipeline.FileStage", "into a stage (a mapping with name, run, dir, env, timeout, secrets)",
	"into pipeline.FileArtifact", "into an artifact (a mapping with dir or file)",
	"into pipeline.FileCache", "into a cache (a mapping with key and paths)",
	"into pipeline.File", "into pipeline settings",
	"into []string", "into a list of strings",
)

// recordLines maps every field path under n to its line.
func recordLines(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			lines[p] = k.Line
			recordLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			lines[p] = e.Line
			recordLines(e, p, lines)
		}
	}
}

func stagesIsList(doc *yaml.Node) bool {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "stages" {
			return doc.Content[i+1].Kind == yaml.SequenceNode
		}
	}
	return false
}

// errAt is a ParseError for the field at path, with its line if known (or its nearest
// known parent's).
func (f *File) errAt(path string, format string, args ...any) *ParseError {
	line := 0
	for p := path; p != ""; {
		if l, ok := f.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return &ParseError{Line: line, Path: path, Reason: fmt.Sprintf(format, args...)}
}

// check applies a plan's rules to what the file says.
func (f *File) check() error {
	if f.Recipe != "" {
		if _, ok := recipes[f.Recipe]; !ok {
			return f.errAt("recipe", "unknown recipe %q (known: %s)", f.Recipe, strings.Join(RecipeNames(), ", "))
		}
	}
	if f.Profile != "" && !profileRE.MatchString(f.Profile) {
		return f.errAt("profile", "invalid profile %q: use A-Z a-z 0-9 . _ - and commas, not starting with -", f.Profile)
	}
	if err := checkEnvAt(f, "env", f.Env); err != nil {
		return err
	}
	if len(f.Stages) > MaxStages {
		return f.errAt("stages", "%d stages, at most %d allowed", len(f.Stages), MaxStages)
	}
	names := map[string]int{}
	for i := range f.Stages {
		if err := f.checkStage(i, names); err != nil {
			return err
		}
	}
	if a := f.Artifact; a != nil {
		switch {
		case (a.Dir == "") == (a.File == ""):
			return f.errAt("artifact", "give exactly one of dir or file")
		case a.Dir != "":
			if err := checkDir(a.Dir); err != nil {
				return f.errAt("artifact.dir", "%v", err)
			}
		default:
			if err := (ArtifactSpec{Kind: KindFile, Path: a.File}).validate(); err != nil {
				return f.errAt("artifact.file", "%v", err)
			}
		}
	}
	if err := f.checkMerge(); err != nil {
		return err
	}
	if len(f.Caches) > MaxCaches {
		return f.errAt("caches", "%d caches, at most %d allowed", len(f.Caches), MaxCaches)
	}
	for i, c := range f.Caches {
		p := fmt.Sprintf("caches[%d]", i)
		if c.Key == "" || strings.HasSuffix(c.Key, "/") {
			return f.errAt(p+".key", "name the file whose content keys the cache (a lockfile)")
		}
		if err := checkDir(c.Key); err != nil {
			return f.errAt(p+".key", "%v", err)
		}
		if len(c.Paths) == 0 {
			return f.errAt(p+".paths", "list the paths to cache")
		}
		for j, cp := range c.Paths {
			if err := checkCachePath(cp); err != nil {
				return f.errAt(fmt.Sprintf("%s.paths[%d]", p, j), "%q: %v", cp, err)
			}
		}
	}
	return nil
}

func (f *File) checkStage(i int, names map[string]int) error {
	s := &f.Stages[i]
	p := fmt.Sprintf("stages[%d]", i)
	if !nameRE.MatchString(s.Name) {
		if s.Name == "" {
			return f.errAt(p, "missing name")
		}
		return f.errAt(p+".name", "invalid name %q: use 1-64 of A-Z a-z 0-9 . _ -", s.Name)
	}
	if j, dup := names[s.Name]; dup {
		return f.errAt(p+".name", "duplicate stage name %q (also stages[%d])", s.Name, j)
	}
	names[s.Name] = i
	if s.Run.Argv == nil && s.Run.String != "" {
		argv, err := cmdline.Split(s.Run.String)
		if err != nil {
			pe := f.errAt(p+".run", "%v", err)
			var se *cmdline.SyntaxError
			if errors.As(err, &se) && pe.Line > 0 && se.Line > 1 {
				pe.Line += se.Line - 1 // a block scalar starts on the line after "run:"
			}
			return pe
		}
		s.Run.Argv = argv
	} else if s.Run.given && s.Run.Argv == nil {
		return f.errAt(p+".run", "empty command")
	}
	if s.Run.Argv != nil {
		if err := checkCommand(s.Run.Argv); err != nil {
			return f.errAt(p+".run", "%v", err)
		}
	}
	if err := checkDir(s.Dir); err != nil {
		return f.errAt(p+".dir", "%v", err)
	}
	if s.Image != "" {
		if err := CheckImage(s.Image); err != nil {
			return f.errAt(p+".image", "%v", err)
		}
	}
	if err := checkEnvAt(f, p+".env", s.Env); err != nil {
		return err
	}
	if err := checkSecrets(s.Secrets, s.Env); err != nil {
		return f.errAt(p+".secrets", "%v", err)
	}
	if s.Timeout != "" {
		if _, err := parseTimeout(s.Timeout); err != nil {
			return f.errAt(p+".timeout", "%v", err)
		}
	}
	return nil
}

func checkEnvAt(f *File, p string, env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if err := checkEnv(map[string]string{k: env[k]}); err != nil {
			return f.errAt(p+"."+k, "%v", err)
		}
	}
	return nil
}

var profileRE = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._,-]{0,127}$`)

// parseTimeout parses a stage timeout: a Go duration within MinTimeout..MaxTimeout.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (write e.g. 90s, 10m, 1h30m)", s)
	}
	if d < MinTimeout || d > MaxTimeout {
		return 0, fmt.Errorf("%s is out of range %s..%s", s, MinTimeout, MaxTimeout)
	}
	return d, nil
}

// MaxMergeRefs bounds the refs merged into one build.
const MaxMergeRefs = 10

// CheckMergeRefs checks a list of refs to merge before building: at most MaxMergeRefs,
// each a valid branch or tag name (gitref.Valid) or commit id, none twice.
func CheckMergeRefs(refs []string) error {
	if len(refs) > MaxMergeRefs {
		return fmt.Errorf("%d merge refs, at most %d allowed", len(refs), MaxMergeRefs)
	}
	seen := map[string]bool{}
	for _, r := range refs {
		if err := gitref.Valid(r); err != nil && gitref.ValidCommit(r) != nil {
			return err
		}
		if seen[r] {
			return fmt.Errorf("%q is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

func (f *File) checkMerge() error {
	if len(f.Merge) > MaxMergeRefs {
		return f.errAt("merge", "%d refs, at most %d allowed", len(f.Merge), MaxMergeRefs)
	}
	seen := map[string]int{}
	for i, r := range f.Merge {
		p := fmt.Sprintf("merge[%d]", i)
		if err := gitref.Valid(r); err != nil && gitref.ValidCommit(r) != nil {
			return f.errAt(p, "%v", err)
		}
		if j, dup := seen[r]; dup {
			return f.errAt(p, "%q is listed twice (also merge[%d])", r, j)
		}
		seen[r] = i
	}
	return nil
}

// MergeRefs returns the refs to merge into the checkout at checkoutDir before building:
// the merge list of its pipeline (<source dir>/.fabu.yml, else the project's configured
// pipeline) when that has one, else projectRefs. Errors are Load's.
func MergeRefs(checkoutDir string, project ProjectSettings, projectRefs []string) ([]string, error) {
	src := path.Clean(orDot(project.SourceDir))
	if err := checkDir(src); err != nil {
		return nil, apperr.Invalid("source dir: %v", err)
	}
	f, err := loadFile(checkoutDir, src, project.Pipeline)
	if err != nil {
		return nil, err
	}
	if _, given := f.lines["merge"]; given || f.Merge != nil {
		return f.Merge, nil
	}
	return projectRefs, nil
}
