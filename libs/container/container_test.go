package container

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
)

func TestSettingsValidate(t *testing.T) {
	good := Settings{CLI: "/usr/bin/podman", Insecure: true, Username: "robot$ci+bot", Ports: []string{"8080:80", "127.0.0.1:8443:443/tcp", "53:53/udp"},
		Env: map[string]string{"MODE": "prod", "_X1": "a b=c", "PRICE": "$5 (each)", "TPL": "${HOME}"}, Volumes: []string{"/srv/data:/data", "cache:/var/cache:ro"},
		Restart: "on-failure:5", Network: "host", HealthPort: 8080, HealthPath: "/healthz?x=1", HealthTimeout: 600, StopTimeout: 30}
	if err := good.Validate(); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	for name, change := range map[string]func(s *Settings){
		"cli sh":              func(s *Settings) { s.CLI = "sh" },
		"cli relative":        func(s *Settings) { s.CLI = "bin/docker" },
		"cli with dotdot":     func(s *Settings) { s.CLI = "/usr/../bin/docker" },
		"cli other binary":    func(s *Settings) { s.CLI = "/usr/bin/dockerd" },
		"cli with quote":      func(s *Settings) { s.CLI = "/tmp/x'/docker" },
		"username colon":      func(s *Settings) { s.Username = "a:b" },
		"username newline":    func(s *Settings) { s.Username = "a\nb" },
		"port shell":          func(s *Settings) { s.Ports = []string{"80:80 -v /:/host"} },
		"port zero":           func(s *Settings) { s.Ports = []string{"0:80"} },
		"port too big":        func(s *Settings) { s.Ports = []string{"80:65536"} },
		"port ip bad":         func(s *Settings) { s.Ports = []string{"999.1.1.1:80:80"} },
		"port proto":          func(s *Settings) { s.Ports = []string{"80:80/sctp"} },
		"port twice":          func(s *Settings) { s.Ports = []string{"80:80", "80:81/tcp"} },
		"too many ports":      func(s *Settings) { s.Ports = make([]string, MaxPorts+1) },
		"env name digit":      func(s *Settings) { s.Env = map[string]string{"1A": "x"} },
		"env name dash":       func(s *Settings) { s.Env = map[string]string{"A-B": "x"} },
		"env value control":   func(s *Settings) { s.Env = map[string]string{"A": "x\x1b[2J"} },
		"env value long":      func(s *Settings) { s.Env = map[string]string{"A": strings.Repeat("x", MaxEnvValue+1)} },
		"env value $(…)":      func(s *Settings) { s.Env = map[string]string{"A": "x$(cat /etc/shadow)"} },
		"env value backticks": func(s *Settings) { s.Env = map[string]string{"A": "`id`"} },
		"volume no target":    func(s *Settings) { s.Volumes = []string{"/srv"} },
		"volume mode":         func(s *Settings) { s.Volumes = []string{"/srv:/x:z"} },
		"volume root":         func(s *Settings) { s.Volumes = []string{"/:/host"} },
		"volume proc":         func(s *Settings) { s.Volumes = []string{"/proc/1:/p"} },
		"volume docker sock":  func(s *Settings) { s.Volumes = []string{"/run/docker.sock:/s"} },
		"volume podman":       func(s *Settings) { s.Volumes = []string{"/run/podman/podman.sock:/s"} },
		"volume target root":  func(s *Settings) { s.Volumes = []string{"/srv:/"} },
		"volume not clean":    func(s *Settings) { s.Volumes = []string{"/srv/:/x"} },
		"volume name option":  func(s *Settings) { s.Volumes = []string{"-v:/x"} },
		"volume comma":        func(s *Settings) { s.Volumes = []string{"/srv,ro:/x"} },
		"restart bad":         func(s *Settings) { s.Restart = "sometimes" },
		"restart count":       func(s *Settings) { s.Restart = "on-failure:0" },
		"network container":   func(s *Settings) { s.Network = "container:db" },
		"network option":      func(s *Settings) { s.Network = "-x" },
		"health port":         func(s *Settings) { s.HealthPort = 70000 },
		"health path":         func(s *Settings) { s.HealthPath = "health" },
		"health path space":   func(s *Settings) { s.HealthPath = "/a b" },
		"health timeout":      func(s *Settings) { s.HealthTimeout = MaxHealthTimeout + 1 },
		"stop timeout":        func(s *Settings) { s.StopTimeout = -1 },
		"health path newline": func(s *Settings) { s.HealthPath = "/x\nHost: evil" },
	} {
		s := good
		s.Env = map[string]string{}
		change(&s)
		err := s.Validate()
		if err == nil || apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("%s: Validate() = %v, want an invalid error", name, err)
		}
	}
}

func TestParseAndEncode(t *testing.T) {
	s := Settings{CLI: "podman", Ports: []string{"80:80"}, Env: map[string]string{"A": "1"}}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(enc)
	if err != nil || got.CLI != "podman" || got.Env["A"] != "1" || got.Ports[0] != "80:80" {
		t.Errorf("Parse(Encode(s)) = %+v, %v", got, err)
	}
	if enc, _ := (Settings{}).Encode(); enc != "" {
		t.Errorf("zero settings encode to %q, want \"\"", enc)
	}
	for _, bad := range []string{`{"privileged":true}`, `{"ports":"80:80"}`, `{`, `{"cli":"sh"}`} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
	if got.CLIName() != "podman" || !got.Podman() || (Settings{}).CLIName() != "docker" || (Settings{}).RestartPolicy() != "unless-stopped" {
		t.Error("defaults")
	}
	if f := (Settings{CLI: "podman", Insecure: true}).TLSFlags(); len(f) != 1 || f[0] != "--tls-verify=false" {
		t.Errorf("podman insecure flags %v", f)
	}
	if f := (Settings{Insecure: true}).TLSFlags(); f != nil {
		t.Errorf("docker insecure flags %v, want none (the daemon decides)", f)
	}
}

func TestRepositoriesAndRefs(t *testing.T) {
	for _, tt := range []struct{ repo, registry, name string }{
		{"registry.example.com/team/app", "registry.example.com", "team/app"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000", "app"},
		{"localhost/a/b/c", "localhost", "a/b/c"},
		{"reg-1.example.com:443/a_b/c.d-e", "reg-1.example.com:443", "a_b/c.d-e"},
	} {
		reg, name, err := ParseRepository(tt.repo)
		if err != nil || reg != tt.registry || name != tt.name {
			t.Errorf("ParseRepository(%q) = %q %q %v, want %q %q", tt.repo, reg, name, err, tt.registry, tt.name)
		}
	}
	for _, bad := range []string{"", "app", "team/app", "registry.example.com", "registry.example.com/App",
		"registry.example.com/app:latest", "registry.example.com/app@sha256:00", "-r.example.com/app",
		"registry.example.com/app;id", "registry.example.com//app", "registry.example.com:99999/app",
		"registry.example.com/app/", "registry.example.com/$(id)", "registry.example.com/a b"} {
		if _, _, err := ParseRepository(bad); err == nil {
			t.Errorf("ParseRepository(%q) accepted", bad)
		}
	}
	d := "sha256:" + strings.Repeat("ab", 32)
	ref, err := ParseRef("127.0.0.1:5000/app@" + d)
	if err != nil || ref.Digest != d || ref.Registry() != "127.0.0.1:5000" || ref.String() != "127.0.0.1:5000/app@"+d {
		t.Errorf("ParseRef = %+v %v", ref, err)
	}
	for _, bad := range []string{"127.0.0.1:5000/app:v1", "127.0.0.1:5000/app@sha256:xyz", "127.0.0.1:5000/app@md5:" + strings.Repeat("a", 32), "app@" + d} {
		if _, err := ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{
		"main": "main", "refs/heads/feature/x": "feature-x", "refs/tags/v1.2.0": "v1.2.0",
		"-weird": "weird", "...": "", "über": "ber", strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		got := TagOf(ref)
		if got != want {
			t.Errorf("TagOf(%q) = %q, want %q", ref, got, want)
		}
		if got != "" && ValidTag(got) != nil {
			t.Errorf("TagOf(%q) = %q is not a valid tag", ref, got)
		}
	}
}

func TestAuthFile(t *testing.T) {
	var f struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(AuthFile("127.0.0.1:5000", "ci", `p"a:s\s`), &f); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(f.Auths["127.0.0.1:5000"].Auth)
	if err != nil || string(b) != `ci:p"a:s\s` {
		t.Errorf("auth = %q, %v", b, err)
	}
}

// HasManifest speaks the distribution API: Basic challenges answered directly, Bearer ones
// through the realm's token, 404 reported as gone. The registry here is a local stand-in for
// the token flow a remote registry (Harbor, GitLab) uses; the real docker-registry is
// exercised by the builder's tests.
func TestHasManifest(t *testing.T) {
	digest := "sha256:" + strings.Repeat("cd", 32)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			u, p, ok := r.BasicAuth()
			if !ok || u != "ci" || p != "pw" || r.URL.Query().Get("scope") != "repository:team/app:pull" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"token":"tok-1"}`))
		case r.Header.Get("Authorization") != "Bearer tok-1":
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/v2/team/app/manifests/"+digest:
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	if err := HasManifest(ctx, srv.Client(), Ref{Repository: host + "/team/app", Digest: digest}, true, "ci", "pw"); err != nil {
		t.Errorf("present manifest: %v", err)
	}
	gone := Ref{Repository: host + "/team/app", Digest: "sha256:" + strings.Repeat("ef", 32)}
	if err := HasManifest(ctx, srv.Client(), gone, true, "ci", "pw"); err == nil || !strings.Contains(err.Error(), "no longer has") {
		t.Errorf("missing manifest: %v", err)
	}
	if err := HasManifest(ctx, srv.Client(), Ref{Repository: host + "/team/app", Digest: digest}, true, "ci", "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`{"cli":"podman","ports":["80:80"],"env":{"A":"b"},"volumes":["/a:/b:ro"]}`)
	f.Add(`{"health_path":"/x?y=z","restart":"on-failure:3"}`)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := Parse(s)
		if err != nil {
			return
		}
		// Whatever Parse accepts must survive its own validation and round-trip.
		if err := st.Validate(); err != nil {
			t.Fatalf("Parse accepted %q but Validate refuses it: %v", s, err)
		}
		enc, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(enc); err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		for _, v := range append(append(append([]string{}, st.Ports...), st.Volumes...), st.SortedEnv()...) {
			if strings.ContainsAny(v, "\x00\n\r") {
				t.Fatalf("accepted a control character in %q", v)
			}
		}
	})
}

func FuzzParseRef(f *testing.F) {
	f.Add("127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64))
	f.Add("registry.example.com/team/app")
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseRef(s)
		if err != nil {
			return
		}
		if ref.String() != s || strings.ContainsAny(s, " ;$`'\"\\\n|&<>()") {
			t.Fatalf("ParseRef accepted %q as %+v", s, ref)
		}
	})
}
