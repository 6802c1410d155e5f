package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestStageSecrets(t *testing.T) {
	t.Run("declared in .fabu.yml and in the project pipeline", func(t *testing.T) {
		root := tree(t, map[string]string{"package.json": "{}", "package-lock.json": "{}"})
		p, err := Load(root, ProjectSettings{Type: "frontend", Pipeline: []byte(`{"stages":[
			{"name":"install","secrets":["NPM_TOKEN"]},
			{"name":"build"}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Stages[0].Secrets, []string{"NPM_TOKEN"}) || p.Stages[1].Secrets != nil {
			t.Errorf("stages = %+v", p.Stages)
		}
		f, err := ParseYAML([]byte("stages:\n  - name: a\n    run: make\n    secrets: [A_TOKEN, KEY2]\n"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.Stages[0].Secrets, []string{"A_TOKEN", "KEY2"}) {
			t.Errorf("secrets = %q", f.Stages[0].Secrets)
		}
	})
	t.Run("declared names are part of the fingerprint, absent ones change nothing", func(t *testing.T) {
		base := Plan{Recipe: "static", Stages: []Stage{{Name: "a", Command: []string{"make"}, Timeout: DefaultTimeout}},
			Artifact: ArtifactSpec{Kind: KindDir, Path: "."}}
		with := base
		with.Stages = []Stage{{Name: "a", Command: []string{"make"}, Timeout: DefaultTimeout, Secrets: []string{"TOKEN"}}}
		if base.Fingerprint() == with.Fingerprint() {
			t.Error("declaring a secret did not change the fingerprint")
		}
		// The fingerprint of a plan without secrets is what it was before secrets existed,
		// so artifacts recorded then are still reused.
		type oldStage struct {
			Command []string          `json:"c"`
			Dir     string            `json:"d"`
			Env     map[string]string `json:"e"`
		}
		old, err := json.Marshal(struct {
			Version  int               `json:"v"`
			Recipe   string            `json:"r"`
			Stages   []oldStage        `json:"s"`
			Artifact ArtifactSpec      `json:"a"`
			Env      map[string]string `json:"e"`
		}{2, "static", []oldStage{{Command: []string{"make"}, Dir: "."}}, base.Artifact, nil}) // version 2: without .fabu.yml in dir artifacts
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(old)
		if got, want := base.Fingerprint(), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("fingerprint without secrets = %s, want the one before secrets existed, %s", got, want)
		}
	})
	errs := []struct{ name, in, want string }{
		{"bad name", "stages:\n  - name: a\n    run: make\n    secrets: [1TOKEN]\n",
			`line 4: stages[0].secrets: secret name "1TOKEN": use letters, digits and _, not starting with a digit (at most 128)`},
		{"reserved", "stages:\n  - name: a\n    run: make\n    secrets: [FABU_RUN_ID]\n",
			"line 4: stages[0].secrets: secret name FABU_RUN_ID is set by fabu and cannot be a secret"},
		{"PATH", "stages:\n  - name: a\n    run: make\n    secrets: [PATH]\n",
			"line 4: stages[0].secrets: secret name PATH is set by fabu and cannot be a secret"},
		{"twice", "stages:\n  - name: a\n    run: make\n    secrets: [A, A]\n", "line 4: stages[0].secrets: secret A is declared twice"},
		{"also a variable", "stages:\n  - name: a\n    run: make\n    env: {A: x}\n    secrets: [A]\n",
			"line 5: stages[0].secrets: A is both a variable and a secret of the stage"},
		{"not a list", "stages:\n  - name: a\n    run: make\n    secrets: A\n", "line 4: cannot unmarshal !!str `A` into a list of strings"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseYAML = %v\nwant %s", err, tt.want)
			}
		})
	}
	t.Run("a hand-made plan is checked too", func(t *testing.T) {
		p := Plan{Recipe: "static", Stages: []Stage{{Name: "a", Command: []string{"make"}, Timeout: DefaultTimeout, Secrets: []string{"HOME"}}},
			Artifact: ArtifactSpec{Kind: KindDir, Path: "."}}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "secret name HOME is set by fabu") {
			t.Errorf("Validate = %v", err)
		}
	})
}
