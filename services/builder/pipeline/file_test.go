package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseYAMLGood(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, f File)
	}{
		{"empty file", "", func(t *testing.T, f File) {
			if f.Stages != nil || f.Recipe != "" {
				t.Errorf("got %+v, want nothing set", f)
			}
		}},
		{"full", `
recipe: java-jar
profile: prod
env:
  MAVEN_OPTS: -Xmx1g
  RETRIES: 3
stages:
  - name: compile
    run: javac -d out src/Main.java
    timeout: 5m
  - name: package
    run: [jar, cfe, app.jar, Main, -C, out, .]
    dir: sub/dir
    env: {SOURCE_DATE_EPOCH: "0"}
artifact:
  file: app.jar
caches:
  - key: pom.xml
    paths: [~/.m2/repository, node_modules]
`, func(t *testing.T, f File) {
			if f.Recipe != "java-jar" || f.Profile != "prod" || f.Env["RETRIES"] != "3" {
				t.Errorf("top level = %q %q %v", f.Recipe, f.Profile, f.Env)
			}
			if len(f.Stages) != 2 {
				t.Fatalf("stages = %d, want 2", len(f.Stages))
			}
			if want := []string{"javac", "-d", "out", "src/Main.java"}; !slices.Equal(f.Stages[0].Run.Argv, want) {
				t.Errorf("stage 0 argv = %q, want %q", f.Stages[0].Run.Argv, want)
			}
			if want := []string{"jar", "cfe", "app.jar", "Main", "-C", "out", "."}; !slices.Equal(f.Stages[1].Run.Argv, want) {
				t.Errorf("stage 1 argv = %q, want %q", f.Stages[1].Run.Argv, want)
			}
			if f.Artifact == nil || f.Artifact.File != "app.jar" || len(f.Caches) != 1 {
				t.Errorf("artifact %+v caches %+v", f.Artifact, f.Caches)
			}
		}},
		{"empty stage list removes all stages", "stages: []\n", func(t *testing.T, f File) {
			if f.Stages == nil || len(f.Stages) != 0 {
				t.Errorf("Stages = %#v, want empty and not nil", f.Stages)
			}
		}},
		{"stage without run reuses a recipe stage", "stages:\n  - name: build\n  - name: install\n", func(t *testing.T, f File) {
			if len(f.Stages) != 2 || f.Stages[0].Run.Given() {
				t.Errorf("Stages = %+v", f.Stages)
			}
		}},
		{"json is accepted too", `{"recipe":"frontend","stages":[{"name":"build","run":"npm run build"}]}`, func(t *testing.T, f File) {
			if f.Recipe != "frontend" || len(f.Stages) != 1 {
				t.Errorf("got %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseYAML([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseYAML: %v", err)
			}
			tt.check(t, f)
		})
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole error
	}{
		// yaml.v3 reports a syntax error at the start of the enclosing block (counted from
		// 0); the error names the offending line instead.
		{"syntax", "stages:\n  - name: a\n   run: x\n", "line 3: did not find expected '-' indicator"},
		{"syntax deep in a block", "recipe: static\nstages:\n  - name: a\n    run: make\n  - name: b\n    run: make\n   timeout: 5m\n",
			"line 7: did not find expected '-' indicator"},
		{"key indented less", "recipe: static\nenv:\n  A: x\n B: y\n", "line 4: did not find expected key"},
		{"flow mapping left open", "recipe: static\n\nstages:\n  - name: a\n    run: make\n    env: {A: 1\n  - name: b\n",
			"line 6: did not find expected ',' or '}'"},
		{"syntax on the first line", "profile: a: b\n", "line 1: mapping values are not allowed in this context"},
		{"syntax on a later line", "recipe: static\nprofile: a: b\n", "line 2: mapping values are not allowed in this context"},
		{"syntax in a second document", "recipe: static\n---\nstages:\n  - name: a\n   run: x\n", "line 5: did not find expected '-' indicator"},
		{"unknown top-level field", "recipe: static\nstagez: []\n", `line 2: unknown field "stagez"`},
		{"unknown stage field", "stages:\n  - name: a\n    run: make\n    cmd: make\n", `line 4: unknown field "cmd"`},
		{"wrong type", "stages: build\n", "line 1: cannot unmarshal !!str `build` into a list of stages"},
		{"env not a map", "env: [A]\n", "line 1: cannot unmarshal !!seq into a mapping of names to strings"},
		{"run neither string nor list", "stages:\n  - name: a\n    run: {x: 1}\n", "line 3: run: want a string or a list of strings"},
		{"run list of non-strings", "stages:\n  - name: a\n    run: [make, [x]]\n", "line 3: run: every element of a command list must be a string"},
		{"duplicate key", "recipe: static\nrecipe: nodejs\n", `line 2: mapping key "recipe" already defined at line 1`},
		{"two documents", "recipe: static\n---\nrecipe: nodejs\n", "line 2: more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "line 1: want a mapping of pipeline settings (recipe, stages, …)"},
		{"unknown recipe", "\nrecipe: cobol\n", `line 2: recipe: unknown recipe "cobol" (known: docker, frontend, java-jar, java-war, nodejs, static)`},
		{"image as an option", "stages:\n  - name: a\n    run: make\n    image: --privileged\n", `line 4: stages[0].image: image "--privileged": give a reference such as node:20, registry.example.com/team/build:1.2 or one pinned by @sha256:…`},
		{"image with a space", "stages:\n  - name: a\n    run: make\n    image: \"node:20 -v /:/h\"\n", `line 4: stages[0].image: image "node:20 -v /:/h": give a reference such as node:20, registry.example.com/team/build:1.2 or one pinned by @sha256:…`},
		{"bad profile", "profile: -x\n", `line 1: profile: invalid profile "-x": use A-Z a-z 0-9 . _ - and commas, not starting with -`},
		{"bad env name", "env:\n  1A: x\n", `line 2: env.1A: variable name "1A": use letters, digits and _, not starting with a digit`},
		{"reserved env", "env:\n  FABU_COMMIT: x\n", "line 2: env.FABU_COMMIT: variable FABU_COMMIT is set by fabu and cannot be declared"},
		{"HOME", "stages:\n  - name: a\n    run: make\n    env:\n      HOME: /root\n", "line 5: stages[0].env.HOME: variable HOME is set by fabu and cannot be declared"},
		{"PATH", "env:\n  PATH: /tmp/evil\n", "line 2: env.PATH: variable PATH is set by fabu and cannot be declared"},
		{"LD_PRELOAD", "stages:\n  - name: a\n    run: make\n    env: {LD_PRELOAD: /tmp/x.so}\n",
			"line 4: stages[0].env.LD_PRELOAD: variable LD_PRELOAD changes how every program is loaded and cannot be declared"},
		{"missing name", "stages:\n  - run: make\n", "line 2: stages[0]: missing name"},
		{"bad name", "stages:\n  - name: a b\n    run: make\n", `line 2: stages[0].name: invalid name "a b": use 1-64 of A-Z a-z 0-9 . _ -`},
		{"duplicate name", "stages:\n  - name: a\n    run: make\n  - name: a\n    run: make\n", `line 4: stages[1].name: duplicate stage name "a" (also stages[0])`},
		{"pipe", "stages:\n  - name: a\n    run: make | tee log\n", `line 3: stages[0].run: "|" (pipe) is not supported: commands run without a shell; put the pipeline in a script file and run that`},
		{"and list", "stages:\n  - name: a\n    run: npm ci && npm run build\n", `line 3: stages[0].run: "&&" is not supported: give each command its own stage`},
		{"substitution", "stages:\n  - name: a\n    run: echo $(id)\n", `line 3: stages[0].run: "$(": variables and command substitution are not expanded; write the value or declare it in env`},
		{"redirect", "stages:\n  - name: a\n    run: make > log\n", `line 3: stages[0].run: ">" (redirection) is not supported: output goes to the run log`},
		{"sh -c as list", "stages:\n  - name: a\n    run: [sh, -c, make]\n", "line 3: stages[0].run: sh -c is not allowed: run a script file (sh build.sh) or give the command itself"},
		{"sh -c as string", "stages:\n  - name: a\n    run: bash -c 'make'\n", "line 3: stages[0].run: bash -c is not allowed: run a script file (sh build.sh) or give the command itself"},
		{"empty run", "stages:\n  - name: a\n    run: \"\"\n", "line 3: stages[0].run: empty command"},
		{"empty run list", "stages:\n  - name: a\n    run: []\n", "line 3: stages[0].run: empty command"},
		{"multi-line run", "stages:\n  - name: a\n    run: |\n      npm ci\n      npm test\n", "line 3: stages[0].run: a command must be one line: give each command its own stage"},
		{"dir with ..", "stages:\n  - name: a\n    run: make\n    dir: ../other\n", `line 4: stages[0].dir: "../other" must not contain ".."`},
		{"absolute dir", "stages:\n  - name: a\n    run: make\n    dir: /tmp\n", `line 4: stages[0].dir: "/tmp" must be relative`},
		{"unclean dir", "stages:\n  - name: a\n    run: make\n    dir: a//b\n", `line 4: stages[0].dir: "a//b" is not normalized (want "a/b")`},
		{"bad timeout", "recipe: static\nenv: {}\nstages:\n  - name: a\n    run: make\n  - name: b\n    run: make\n    timeout: soon\n", `line 8: stages[1].timeout: invalid duration "soon" (write e.g. 90s, 10m, 1h30m)`},
		{"timeout without unit", "stages:\n  - name: a\n    run: make\n    timeout: 600\n", `line 4: stages[0].timeout: invalid duration "600" (write e.g. 90s, 10m, 1h30m)`},
		{"timeout too long", "stages:\n  - name: a\n    run: make\n    timeout: 7h\n", "line 4: stages[0].timeout: 7h is out of range 1s..6h0m0s"},
		{"timeout too short", "stages:\n  - name: a\n    run: make\n    timeout: 10ms\n", "line 4: stages[0].timeout: 10ms is out of range 1s..6h0m0s"},
		{"too many stages", "stages:\n" + strings.Repeat("  - name: s\n    run: make\n", 51), "line 1: stages: 51 stages, at most 50 allowed"},
		{"artifact both", "artifact:\n  dir: dist\n  file: a.jar\n", "line 1: artifact: give exactly one of dir or file"},
		{"artifact none", "artifact: {}\n", "line 1: artifact: give exactly one of dir or file"},
		{"artifact escapes", "artifact:\n  dir: ../x\n", `line 2: artifact.dir: "../x" must not contain ".."`},
		{"artifact bad glob", "artifact:\n  file: target/[.jar\n", `line 2: artifact.file: file "target/[.jar": bad glob`},
		{"cache without key", "caches:\n  - paths: [x]\n", "line 2: caches[0].key: name the file whose content keys the cache (a lockfile)"},
		{"cache without paths", "caches:\n  - key: pom.xml\n", "line 2: caches[0].paths: list the paths to cache"},
		{"cache path escapes", "caches:\n  - key: pom.xml\n    paths: [~/../etc]\n", `line 3: caches[0].paths[0]: "~/../etc": "../etc" must not contain ".."`},
		{"cache whole home", "caches:\n  - key: pom.xml\n    paths: [\"~/\"]\n", `line 3: caches[0].paths[0]: "~/": names the whole home`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseYAML error = %v, want a *ParseError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got  %s\n want %s", err, tt.want)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	f, err := ParseJSON([]byte(`{"stages":[{"name":"build","run":["npm","run","build"],"timeout":"10m"}],"artifact":{"dir":"dist"}}`))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	if len(f.Stages) != 1 || !slices.Equal(f.Stages[0].Run.Argv, []string{"npm", "run", "build"}) || f.Artifact.Dir != "dist" {
		t.Errorf("got %+v", f)
	}
	for _, tt := range []struct{ name, in, want string }{
		{"not JSON", "stages:\n  - name: a\n", "line 1: invalid JSON: invalid character 's' looking for beginning of value"},
		{"broken JSON on line 2", "{\"stages\": [\n  {\"name\": \"a\",}]}", "line 2: invalid JSON: invalid character '}' looking for beginning of object key string"},
		{"unknown field", "{\n\"stages\": [],\n\"extra\": 1}", `line 3: unknown field "extra"`},
		{"bad timeout", "{\"stages\": [\n {\"name\": \"a\", \"run\": \"make\",\n  \"timeout\": \"soon\"}]}", `line 3: stages[0].timeout: invalid duration "soon" (write e.g. 90s, 10m, 1h30m)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJSON([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n got  %v\n want %s", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "recipe: static\n", "stages:\n  - name: a\n    run: make -j4\n    timeout: 5m\n",
		"stages:\n  - name: a\n    run: [x, y]\n    dir: sub\n    env: {A: b}\nartifact: {file: 'target/*.jar'}\n",
		"caches:\n  - key: pom.xml\n    paths: [~/.m2]\n", `{"stages":[]}`, "stages: []\nenv: {A: 1}\n",
		"stages:\n  - name: build\n  - name: x\n    run: 'a b'\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseYAML(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		// Whatever the parser accepts must make a valid plan.
		p := Plan{Recipe: "static", Env: file.Env, Artifact: ArtifactSpec{Kind: KindDir, Path: "."}}
		if file.Artifact != nil {
			if file.Artifact.Dir != "" {
				p.Artifact = ArtifactSpec{Kind: KindDir, Path: file.Artifact.Dir}
			} else {
				p.Artifact = ArtifactSpec{Kind: KindFile, Path: file.Artifact.File}
			}
		}
		if file.Recipe != "" {
			p.Recipe = file.Recipe
		}
		for _, s := range file.Stages {
			st := Stage{Name: s.Name, Command: s.Run.Argv, Dir: s.Dir, Env: s.Env, Timeout: DefaultTimeout}
			if !s.Run.Given() {
				st.Command = []string{"placeholder"} // taken from the recipe by Load
			}
			if s.Timeout != "" {
				d, err := parseTimeout(s.Timeout)
				if err != nil {
					t.Fatalf("accepted timeout %q does not parse: %v", s.Timeout, err)
				}
				st.Timeout = d
			}
			p.Stages = append(p.Stages, st)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted file makes an invalid plan: %v\n%s", err, data)
		}
	})
}
