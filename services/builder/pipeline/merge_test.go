package pipeline

import (
	"errors"
	"slices"
	"testing"

	"fabu.dev/libs/apperr"
)

func TestParseYAMLMergeList(t *testing.T) {
	f, err := ParseYAML([]byte("merge:\n  - feature/login\n  - refs/tags/v1.2\n  - 0123abc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"feature/login", "refs/tags/v1.2", "0123abc"}; !slices.Equal(f.Merge, want) {
		t.Fatalf("Merge = %q, want %q", f.Merge, want)
	}
	tests := []struct{ name, in, want string }{
		{"hostile ref", "recipe: static\nmerge:\n  - main\n  - main;id\n", `line 4: merge[1]: invalid git ref "main;id": contains the shell metacharacter ';'`},
		{"option", "merge: [--upload-pack=touch]\n", `line 1: merge[0]: invalid git ref "--upload-pack=touch": starts with "-"`},
		{"traversal", "merge:\n  - ../x\n", `line 2: merge[0]: invalid git ref "../x": contains ".."`},
		{"twice", "merge:\n  - a\n  - b\n  - a\n", `line 4: merge[2]: "a" is listed twice (also merge[0])`},
		{"not a list", "merge: main\n", "line 1: cannot unmarshal !!str `main` into a list of strings"},
		{"too many", "merge: [a, b, c, d, e, f, g, h, i, j, k]\n", "line 1: merge: 11 refs, at most 10 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) || err.Error() != tt.want {
				t.Errorf("error\n got  %v\n want %s", err, tt.want)
			}
		})
	}
}

func TestMergeRefsPrecedence(t *testing.T) {
	project := []string{"from-project"}
	tests := []struct {
		name     string
		files    map[string]string
		pipeline string
		want     []string
	}{
		{"project refs without a pipeline", map[string]string{"index.html": "x"}, "", project},
		{".fabu.yml without merge keeps the project's", map[string]string{"app/.fabu.yml": "recipe: static\n"}, "", project},
		{".fabu.yml list replaces", map[string]string{"app/.fabu.yml": "merge: [a, b]\n"}, "", []string{"a", "b"}},
		{".fabu.yml empty list merges nothing", map[string]string{"app/.fabu.yml": "merge: []\n"}, "", nil},
		{"configured pipeline's list", map[string]string{"index.html": "x"}, `{"merge":["c"]}`, []string{"c"}},
		{".fabu.yml wins over the configured pipeline", map[string]string{"app/.fabu.yml": "merge: [d]\n"}, `{"merge":["c"]}`, []string{"d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t, tt.files)
			got, err := MergeRefs(root, ProjectSettings{SourceDir: "app", Pipeline: []byte(tt.pipeline)}, project)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("MergeRefs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	root := tree(t, map[string]string{"app/.fabu.yml": "merge: [\"x;id\"]\n"})
	if _, err := MergeRefs(root, ProjectSettings{SourceDir: "app"}, nil); !apperr.Is(err, apperr.CodeInvalid) {
		t.Fatalf("MergeRefs of a hostile .fabu.yml: error = %v, want invalid", err)
	}
}
