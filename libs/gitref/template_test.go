package gitref

import (
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
)

func TestRenderTag(t *testing.T) {
	vars := TagVars{Time: time.Date(2026, 11, 26, 1, 2, 3, 0, time.FixedZone("CST", 8*3600)),
		Run: "01JDX0RUN", Commit: "0123456789abcdef0123456789abcdef01234567", Project: "shop-web"}
	tests := []struct{ tpl, want string }{
		{"release-{{date}}-{{run}}", "release-20261125-01JDX0RUN"},
		{"v{{ date }}.{{time}}", "v20261125.170203"},
		{"{{project}}/{{commit}}", "shop-web/0123456789ab"},
		{"fixed-name", "fixed-name"},
	}
	for _, tt := range tests {
		got, err := RenderTag(tt.tpl, vars)
		if err != nil || got != tt.want {
			t.Errorf("RenderTag(%q) = %q, %v; want %q", tt.tpl, got, err, tt.want)
		}
	}
}

func TestValidTagTemplateRefuses(t *testing.T) {
	for _, tpl := range []string{
		"", "release-{{date", "release-{{user}}", "rel;id-{{run}}", "$(id)", "a b", "-{{run}}",
		"refs/tags/{{run}}", "../{{run}}", "x..y", "x.lock", "{{run}}/", "tag~1", "a:b", "--upload-pack=x",
	} {
		if err := ValidTagTemplate(tpl); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("ValidTagTemplate(%q) = %v, want invalid", tpl, err)
		}
	}
	if _, err := RenderTag("{{project}}-{{run}}", TagVars{Project: "bad..name", Run: "r"}); err == nil {
		t.Error("RenderTag with a project name making an invalid tag succeeded")
	}
}

// Whatever the template, a rendered tag name is a valid ref that needs no quoting.
func FuzzRenderTag(f *testing.F) {
	for _, s := range []string{"release-{{date}}-{{run}}", "v{{ time }}", "{{", "}}{{run", "a/{{project}}/b", "x;{{run}}", "{{commit}}.lock"} {
		f.Add(s, "shop-web")
	}
	f.Fuzz(func(t *testing.T, tpl, project string) {
		name, err := RenderTag(tpl, TagVars{Time: time.Unix(1_700_000_000, 0), Run: "01JDX0RUN", Commit: "0123456789abcdef", Project: project})
		if err != nil {
			return
		}
		if Valid(name) != nil || name == "" || strings.ContainsAny(name, " \t\n;$`|&<>'\"(){}!\\") || strings.HasPrefix(name, "refs/") {
			t.Fatalf("RenderTag(%q, project %q) = %q, which is not a plain valid tag name", tpl, project, name)
		}
	})
}
