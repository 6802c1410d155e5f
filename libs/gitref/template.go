package gitref

import (
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// TagVars are the values a tag name template may use.
type TagVars struct {
	Time    time.Time // {{date}} (YYYYMMDD) and {{time}} (HHMMSS), in UTC
	Run     string    // {{run}}: the run id
	Commit  string    // {{commit}}: the first 12 digits of the built commit
	Project string    // {{project}}: the project's name
}

// tagPlaceholders are the placeholders of a tag template.
var tagPlaceholders = []string{"date", "time", "run", "commit", "project"}

// maxTemplateLen bounds a tag template.
const maxTemplateLen = 200

// ValidTagTemplate checks a tag name template such as "release-{{date}}-{{run}}": only the
// placeholders {{date}}, {{time}}, {{run}}, {{commit}} and {{project}}, literal text of
// A-Z a-z 0-9 . _ - /, and a result that is a valid tag name (Valid). The error is an
// apperr Invalid error.
func ValidTagTemplate(tpl string) error {
	_, err := RenderTag(tpl, TagVars{Time: time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC),
		Run: "01J00000000000000000000000", Commit: strings.Repeat("a", 40), Project: "project"})
	return err
}

// RenderTag returns the tag name tpl makes with vars, checked like ValidTagTemplate. A
// project name that would make an invalid tag is an error too.
func RenderTag(tpl string, vars TagVars) (string, error) {
	if tpl == "" || len(tpl) > maxTemplateLen {
		return "", apperr.Invalid("tag template must have 1 to %d characters", maxTemplateLen)
	}
	commit := vars.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	values := map[string]string{
		"date": vars.Time.UTC().Format("20060102"), "time": vars.Time.UTC().Format("150405"),
		"run": vars.Run, "commit": commit, "project": vars.Project,
	}
	var b strings.Builder
	for rest := tpl; rest != ""; {
		open := strings.Index(rest, "{{")
		if open < 0 {
			open = len(rest)
		}
		literal := rest[:open]
		for i := 0; i < len(literal); i++ {
			c := literal[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-/", c) >= 0) {
				return "", apperr.Invalid("tag template %q: %q is not allowed; use A-Z a-z 0-9 . _ - / and the placeholders {{%s}}", tpl, c, strings.Join(tagPlaceholders, "}}, {{"))
			}
		}
		b.WriteString(literal)
		rest = rest[open:]
		if rest == "" {
			break
		}
		end := strings.Index(rest, "}}")
		if end < 0 {
			return "", apperr.Invalid("tag template %q: unclosed {{", tpl)
		}
		name := strings.TrimSpace(rest[2:end])
		v, ok := values[name]
		if !ok {
			return "", apperr.Invalid("tag template %q: unknown placeholder {{%s}} (known: {{%s}})", tpl, name, strings.Join(tagPlaceholders, "}}, {{"))
		}
		b.WriteString(v)
		rest = rest[end+2:]
	}
	name := b.String()
	if strings.HasPrefix(name, "refs/") {
		return "", apperr.Invalid("tag template %q: give the tag's name, without refs/", tpl)
	}
	if err := Valid(name); err != nil {
		return "", apperr.Invalid("tag template %q makes %q, not a valid tag name", tpl, name)
	}
	return name, nil
}
