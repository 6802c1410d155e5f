package cli

import (
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"fabu.dev/cmd/fabu/internal/client"
)

// validName is the shape of server and project names (the same rule the server enforces).
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

const nameRule = "up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

// yamlTypeNames renders Go type names in YAML errors as what the user wrote.
var yamlTypeNames = strings.NewReplacer(
	"in type client.ApplyDoc", "at the top level",
	"in type client.ServerSpec", "in a server",
	"in type client.ProjectSpec", "in a project",
	"in type client.DockerSpec", "in a project's docker settings",
)

// parseApplyFile decodes one YAML document of servers and projects strictly — an unknown
// field is an error naming it and its line — and checks its shape.
func parseApplyFile(r io.Reader) (client.ApplyDoc, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var doc client.ApplyDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, errors.New("the file is empty")
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return doc, errors.New(yamlTypeNames.Replace(strings.Join(te.Errors, "; ")))
		}
		return doc, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return doc, err
		}
		return doc, fmt.Errorf("line %d: only one YAML document is allowed", next.Line)
	}
	return doc, validateApplyDoc(doc)
}

// validateApplyDoc checks what can be checked without the server: names, required fields,
// ranges and duplicates. Every problem is reported, not only the first.
func validateApplyDoc(doc client.ApplyDoc) error {
	if len(doc.Connections) == 0 && len(doc.Servers) == 0 && len(doc.Projects) == 0 {
		return errors.New("nothing to apply: no connections, servers or projects")
	}
	var errs []error
	bad := func(kind string, i int, name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s[%d] (%q): %s", kind, i, name, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	for i, c := range doc.Connections {
		checkName(func(f string, a ...any) { bad("connections", i, c.Name, f, a...) }, c.Name, seen)
		switch c.Platform {
		case "gitlab", "github", "gitee":
		default:
			bad("connections", i, c.Name, "platform %q is not gitlab, github or gitee", c.Platform)
		}
	}
	seen = map[string]bool{}
	for i, s := range doc.Servers {
		checkName(func(f string, a ...any) { bad("servers", i, s.Name, f, a...) }, s.Name, seen)
		if s.Host == "" {
			bad("servers", i, s.Name, "host is required")
		}
		if s.Port < 0 || s.Port > 65535 {
			bad("servers", i, s.Name, "port %d is not a TCP port", s.Port)
		}
		if s.User == "" {
			bad("servers", i, s.Name, "user is required")
		}
		if s.HostKey == "" {
			bad("servers", i, s.Name, "host_key is required (a known_hosts line, e.g. from ssh-keyscan)")
		}
	}
	seen = map[string]bool{}
	for i, p := range doc.Projects {
		fail := func(f string, a ...any) { bad("projects", i, p.Name, f, a...) }
		checkName(fail, p.Name, seen)
		if p.GitURL == "" {
			fail("git_url is required")
		}
		if !path.IsAbs(p.DeployPath) || path.Clean(p.DeployPath) != p.DeployPath || p.DeployPath == "/" {
			fail("deploy_path %q must be a clean absolute path below /", p.DeployPath)
		}
		if p.KeepReleases < 0 {
			fail("keep_releases must not be negative")
		}
		if (p.Connection == "") != (p.RepoPath == "") {
			fail("connection and repo_path go together")
		}
		names := map[string]bool{}
		for _, s := range p.Servers {
			if !validName.MatchString(s) {
				fail("server name %q is not a name (%s)", s, nameRule)
			} else if names[s] {
				fail("server %q is listed twice", s)
			}
			names[s] = true
		}
	}
	return errors.Join(errs...)
}

func checkName(fail func(string, ...any), name string, seen map[string]bool) {
	switch {
	case name == "":
		fail("name is required")
	case !validName.MatchString(name):
		fail("name is not valid (%s)", nameRule)
	case seen[name]:
		fail("name is used twice")
	}
	seen[name] = true
}
