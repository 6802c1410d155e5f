package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/cmd/fabu/internal/client/clienttest"
)

const applyFile = `servers:
  - name: web1
    host: 10.0.0.1
    port: 22
    user: deploy
    host_key: "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH"
projects:
  - name: shop
    git_url: https://git.example.com/shop.git
    type: jar
    source_dir: backend
    branch: main
    deploy_path: /srv/shop
    keep_releases: 5
    servers: [web1]
    webhook_secret: s3cret
`

func TestApply(t *testing.T) {
	isolate(t)
	g := clienttest.Start(t)
	file := filepath.Join(t.TempDir(), "fabu.yaml")
	if err := os.WriteFile(file, []byte(applyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"first apply creates", []string{"-f", file}, "", "server   web1  created\nproject  shop  created\n"},
		{"same file again changes nothing", []string{"-f", file}, "", "server   web1  unchanged\nproject  shop  unchanged\n"},
		{"changed file from stdin updates", []string{"-f", "-"}, strings.Replace(applyFile, "keep_releases: 5", "keep_releases: 3", 1), "server   web1  unchanged\nproject  shop  updated\n"},
	}
	for _, st := range steps {
		r := execute(t, strings.NewReader(st.stdin), append([]string{"apply", "--server", g.URL, "--token", g.Token}, st.args...)...)
		noToken(t, g.Token, r)
		if r.err != nil || r.stdout != st.want {
			t.Errorf("%s: stdout %q, error %v; want %q", st.name, r.stdout, r.err, st.want)
		}
	}
	sent := g.Applied()[0]
	want := client.ApplyDoc{
		Servers: []client.ServerSpec{{Name: "web1", Host: "10.0.0.1", Port: 22, User: "deploy", HostKey: "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH"}},
		Projects: []client.ProjectSpec{{Name: "shop", GitURL: "https://git.example.com/shop.git", Type: "jar", SourceDir: "backend",
			Branch: "main", DeployPath: "/srv/shop", KeepReleases: 5, Servers: []string{"web1"}, WebhookSecret: "s3cret"}},
	}
	if !reflect.DeepEqual(sent, want) {
		t.Errorf("the server received\n%+v\nwant\n%+v", sent, want)
	}
}

func TestApplyRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // all must appear in the error
	}{
		{"unknown project field", strings.Replace(applyFile, "git_url:", "gti_url:", 1), []string{"line 9", "gti_url", "in a project"}},
		{"unknown server field", strings.Replace(applyFile, "port: 22", "prot: 22", 1), []string{"line 4", "prot", "in a server"}},
		{"unknown top-level field", applyFile + "users: []\n", []string{"line 17", "users"}},
		{"wrong type", strings.Replace(applyFile, "port: 22", "port: ssh", 1), []string{"line 4", "ssh"}},
		{"empty", "", []string{"the file is empty"}},
		{"nothing in it", "servers: []\n", []string{"nothing to apply"}},
		{"two documents", applyFile + "---\nservers: []\n", []string{"line 17", "only one YAML document"}},
		{"not YAML", "servers: [\n", []string{"yaml"}},
		{"missing fields", "servers:\n  - name: web1\nprojects:\n  - name: shop\n    servers: [web1, web1]\n", []string{
			`servers[0] ("web1"): host is required`, `servers[0] ("web1"): user is required`, `servers[0] ("web1"): host_key is required`,
			`projects[0] ("shop"): git_url is required`, `projects[0] ("shop"): deploy_path "" must be`, `server "web1" is listed twice`}},
		{"bad values", strings.NewReplacer("port: 22", "port: 70000", "/srv/shop", "/srv/../etc", "keep_releases: 5", "keep_releases: -1", "name: shop", "name: shop shop").Replace(applyFile), []string{
			"port 70000 is not a TCP port", `deploy_path "/srv/../etc" must be a clean absolute path`, "keep_releases must not be negative", `projects[0] ("shop shop"): name is not valid`}},
		{"duplicate names", strings.Replace(applyFile, "projects:", "  - {name: web1, host: h, user: u, host_key: k}\nprojects:", 1), []string{`servers[1] ("web1"): name is used twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			g := clienttest.Start(t)
			r := execute(t, strings.NewReader(tt.file), "apply", "-f", "-", "--server", g.URL, "--token", g.Token)
			if r.err == nil {
				t.Fatal("apply accepted the file")
			}
			for _, w := range tt.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q does not contain %q", r.err, w)
				}
			}
			if n := len(g.Applied()); n != 0 {
				t.Errorf("the server received %d documents, want none", n)
			}
		})
	}
}

func TestApplyShowsServerErrors(t *testing.T) {
	isolate(t)
	g := clienttest.Start(t)
	file := strings.Replace(applyFile, "servers: [web1]", "servers: [web9]", 1)
	r := execute(t, strings.NewReader(file), "apply", "-f", "-", "--server", g.URL, "--token", g.Token)
	if r.err == nil || !strings.Contains(r.err.Error(), `project "shop": no server named "web9"`) {
		t.Errorf("error = %v, want the server's message", r.err)
	}
}

// FuzzParseApplyFile checks that the parser never panics and that whatever it accepts is
// valid and survives a round trip through YAML unchanged.
func FuzzParseApplyFile(f *testing.F) {
	f.Add(applyFile)
	f.Add("servers: []\nprojects: [{name: a, git_url: g, deploy_path: /a, servers: [x]}]\n")
	f.Add("servers: [{name: a, host: h, user: u, host_key: k, port: 0}]\n---\n")
	f.Fuzz(func(t *testing.T, in string) {
		doc, err := parseApplyFile(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := validateApplyDoc(doc); err != nil {
			t.Fatalf("accepted a document that does not validate: %v", err)
		}
		b, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseApplyFile(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("its own YAML is rejected: %v\n%s", err, b)
		}
		// Compared as YAML, where an absent list and an empty one are the same.
		if b2, _ := yaml.Marshal(again); string(b2) != string(b) {
			t.Fatalf("round trip changed the document:\n%s\nwant\n%s", b2, b)
		}
	})
}
