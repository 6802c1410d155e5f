// Package container holds what fabu's services share about container images: a docker
// project's settings (the container CLI, the registry's transport and user, how the
// container runs, its health check), their strict validation, image references, and
// registry credentials in the auth file format both docker and podman read. It is a
// mechanism: when to build, push, start or remove a container is the builder's and the
// deployer's business.
package container

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"fabu.dev/libs/apperr"
)

// Limits of the settings.
const (
	MaxPorts             = 20
	MaxVolumes           = 20
	MaxEnv               = 100
	MaxEnvValue          = 4096
	MaxHealthTimeout     = 600 // seconds
	DefaultHealthTimeout = 60  // seconds
)

// Settings are a docker project's container settings, stored as JSON in
// projects.docker_settings. The registry password is not here: it is sealed apart
// (projects.docker_password_sealed, sealed for PasswordPlace).
type Settings struct {
	// CLI is the container CLI on the target servers: "docker" (default) or "podman", or
	// an absolute path to one of them.
	CLI string `json:"cli,omitempty"`
	// Insecure talks to the registry over plain HTTP or without verifying its certificate
	// (podman's --tls-verify=false; docker needs the registry in its daemon's
	// insecure-registries, and treats 127.0.0.0/8 so already).
	Insecure bool `json:"insecure,omitempty"`
	// TagRef also tags and pushes the image with the run's ref (a branch or tag name made
	// a valid tag), besides the commit tag.
	TagRef bool `json:"tag_ref,omitempty"`
	// Username logs in to the registry with the sealed password; empty: no login.
	Username string `json:"username,omitempty"`
	// Ports are published ports: [ip:]hostPort:containerPort[/tcp|/udp].
	Ports []string `json:"ports,omitempty"`
	// Env are the container's plain environment variables (no secrets: they are stored as
	// given and visible to anyone who may inspect the container).
	Env map[string]string `json:"env,omitempty"`
	// Volumes are mounts: /host/path:/container/path or volume-name:/container/path, with
	// an optional :ro or :rw.
	Volumes []string `json:"volumes,omitempty"`
	// Restart is the restart policy: no, always, unless-stopped (default), on-failure or
	// on-failure:N.
	Restart string `json:"restart,omitempty"`
	// Network is "", bridge, host, none or the name of an existing network.
	Network string `json:"network,omitempty"`
	// HealthPort is a port on the target's loopback that answers HTTP once the container is
	// healthy (usually a published host port); 0 checks only that the container keeps
	// running. HealthPath is the path to GET there (default "/"); HealthTimeout how many
	// seconds the check may take in all (default 60).
	HealthPort    int    `json:"health_port,omitempty"`
	HealthPath    string `json:"health_path,omitempty"`
	HealthTimeout int    `json:"health_timeout,omitempty"`
	// StopTimeout is how many seconds a container has to stop before it is killed
	// (default 10).
	StopTimeout int `json:"stop_timeout,omitempty"`
}

// Parse reads settings stored as JSON ("" is the zero Settings) and validates them.
func Parse(stored string) (Settings, error) {
	var s Settings
	if strings.TrimSpace(stored) == "" {
		return s, nil
	}
	dec := json.NewDecoder(strings.NewReader(stored))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, apperr.Invalid("docker settings: %v", err)
	}
	return s, s.Validate()
}

// Encode returns s as compact JSON for storage; "" for the zero Settings.
func (s Settings) Encode() (string, error) {
	if s.isZero() {
		return "", nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode docker settings: %w", err)
	}
	return string(b), nil
}

func (s Settings) isZero() bool {
	return s.CLI == "" && !s.Insecure && !s.TagRef && s.Username == "" && len(s.Ports) == 0 && len(s.Env) == 0 &&
		len(s.Volumes) == 0 && s.Restart == "" && s.Network == "" && s.HealthPort == 0 && s.HealthPath == "" && s.HealthTimeout == 0 && s.StopTimeout == 0
}

// CLIName is the CLI to run: CLI, or "docker".
func (s Settings) CLIName() string {
	if s.CLI == "" {
		return "docker"
	}
	return s.CLI
}

// Podman reports whether the CLI is podman, whose flags differ a little from docker's.
func (s Settings) Podman() bool { return IsPodman(s.CLIName()) }

// IsPodman reports whether cli (a name or a path) is podman.
func IsPodman(cli string) bool { return path.Base(cli) == "podman" }

// RestartPolicy is Restart, or unless-stopped.
func (s Settings) RestartPolicy() string {
	if s.Restart == "" {
		return "unless-stopped"
	}
	return s.Restart
}

// HealthURLPath is HealthPath, or "/".
func (s Settings) HealthURLPath() string {
	if s.HealthPath == "" {
		return "/"
	}
	return s.HealthPath
}

// StopSeconds is StopTimeout, or 10.
func (s Settings) StopSeconds() int {
	if s.StopTimeout == 0 {
		return 10
	}
	return s.StopTimeout
}

// HealthSeconds is HealthTimeout, or DefaultHealthTimeout.
func (s Settings) HealthSeconds() int {
	if s.HealthTimeout == 0 {
		return DefaultHealthTimeout
	}
	return s.HealthTimeout
}

var (
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	portRE       = regexp.MustCompile(`^(?:([0-9.]{7,15}):)?([0-9]{1,5}):([0-9]{1,5})(?:/(tcp|udp))?$`)
	volumeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	networkRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	healthPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,511}$`)
	restartRE    = regexp.MustCompile(`^(no|always|unless-stopped|on-failure(:[1-9][0-9]?)?)$`)
)

// forbiddenMounts are host paths no container of fabu's mounts: the container engine's
// control sockets (root on the host) and the kernel's interfaces.
var forbiddenMounts = []string{"/proc", "/sys", "/dev", "/var/run/docker.sock", "/run/docker.sock",
	"/run/podman", "/var/run/podman", "/run/containerd", "/var/lib/docker", "/var/lib/containers"}

// Validate checks every field strictly; errors are apperr invalid errors naming the field.
func (s Settings) Validate() error {
	if err := ValidCLI(s.CLI); err != nil {
		return err
	}
	if s.Username != "" && (len(s.Username) > 256 || strings.ContainsAny(s.Username, ":") || !printable(s.Username)) {
		return apperr.Invalid("docker username %q: at most 256 printable characters without ':'", s.Username)
	}
	if len(s.Ports) > MaxPorts {
		return apperr.Invalid("docker ports: %d given, at most %d allowed", len(s.Ports), MaxPorts)
	}
	hostPorts := map[string]bool{}
	for _, p := range s.Ports {
		key, err := checkPort(p)
		if err != nil {
			return err
		}
		if hostPorts[key] {
			return apperr.Invalid("docker ports: host port of %q is published twice", p)
		}
		hostPorts[key] = true
	}
	if len(s.Env) > MaxEnv {
		return apperr.Invalid("docker env: %d variables, at most %d allowed", len(s.Env), MaxEnv)
	}
	for k, v := range s.Env {
		if !envNameRE.MatchString(k) {
			return apperr.Invalid("docker env: variable name %q: use letters, digits and _, not starting with a digit", k)
		}
		if len(v) > MaxEnvValue || !printable(v) {
			return apperr.Invalid("docker env: variable %s: value must be at most %d bytes without control characters", k, MaxEnvValue)
		}
		// Values reach the container literally and no shell ever runs them; a command
		// substitution in one is a mistake or an attempt, refused when it is saved.
		if strings.Contains(v, "$(") || strings.Contains(v, "`") {
			return apperr.Invalid("docker env: variable %s: command substitution ($(…) or `…`) is not run; write the value itself", k)
		}
	}
	if len(s.Volumes) > MaxVolumes {
		return apperr.Invalid("docker volumes: %d given, at most %d allowed", len(s.Volumes), MaxVolumes)
	}
	for _, v := range s.Volumes {
		if err := checkVolume(v); err != nil {
			return err
		}
	}
	if s.Restart != "" && !restartRE.MatchString(s.Restart) {
		return apperr.Invalid("docker restart %q: want no, always, unless-stopped, on-failure or on-failure:N", s.Restart)
	}
	if s.Network != "" && !networkRE.MatchString(s.Network) {
		return apperr.Invalid("docker network %q: use bridge, host, none or a network name of letters, digits, _ . -", s.Network)
	}
	if s.HealthPort < 0 || s.HealthPort > 65535 {
		return apperr.Invalid("docker health_port %d is not 0-65535", s.HealthPort)
	}
	if s.HealthPath != "" && !healthPathRE.MatchString(s.HealthPath) {
		return apperr.Invalid("docker health_path %q: an absolute URL path such as /healthz", s.HealthPath)
	}
	if s.HealthTimeout < 0 || s.HealthTimeout > MaxHealthTimeout {
		return apperr.Invalid("docker health_timeout %d: 0 (default %ds) to %d seconds", s.HealthTimeout, DefaultHealthTimeout, MaxHealthTimeout)
	}
	if s.StopTimeout < 0 || s.StopTimeout > 300 {
		return apperr.Invalid("docker stop_timeout %d: 0 (default 10s) to 300 seconds", s.StopTimeout)
	}
	return nil
}

// ValidCLI checks a container CLI setting: "", docker, podman, or an absolute normalized
// path whose last element is docker or podman.
func ValidCLI(cli string) error {
	switch {
	case cli == "" || cli == "docker" || cli == "podman":
		return nil
	case strings.HasPrefix(cli, "/") && path.Clean(cli) == cli && len(cli) <= 1024 && printable(cli) &&
		!strings.ContainsAny(cli, " \\'\"$`") && (path.Base(cli) == "docker" || path.Base(cli) == "podman"):
		return nil
	}
	return apperr.Invalid("docker cli %q: want docker, podman or an absolute path to one of them", cli)
}

// checkPort validates one port mapping and returns its host side (ip:port/proto).
func checkPort(p string) (string, error) {
	m := portRE.FindStringSubmatch(p)
	if m == nil {
		return "", apperr.Invalid("docker port %q: want [ip:]hostPort:containerPort[/tcp|/udp]", p)
	}
	ip := m[1]
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return "", apperr.Invalid("docker port %q: %q is not an IPv4 address", p, ip)
		}
	}
	for _, n := range []string{m[2], m[3]} {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 || v > 65535 {
			return "", apperr.Invalid("docker port %q: port %s is not 1-65535", p, n)
		}
	}
	proto := m[4]
	if proto == "" {
		proto = "tcp"
	}
	return ip + ":" + m[2] + "/" + proto, nil
}

func checkVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return apperr.Invalid("docker volume %q: want source:/container/path[:ro|:rw]", v)
	}
	src, dst := parts[0], parts[1]
	if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
		return apperr.Invalid("docker volume %q: mode %q is not ro or rw", v, parts[2])
	}
	if strings.HasPrefix(src, "/") {
		if err := cleanAbs(src); err != nil {
			return apperr.Invalid("docker volume %q: host path: %v", v, err)
		}
		if src == "/" {
			return apperr.Invalid("docker volume %q: mounting the host's root is not allowed", v)
		}
		for _, f := range forbiddenMounts {
			if src == f || strings.HasPrefix(src, f+"/") {
				return apperr.Invalid("docker volume %q: mounting %s is not allowed", v, f)
			}
		}
	} else if !volumeNameRE.MatchString(src) {
		return apperr.Invalid("docker volume %q: source must be an absolute host path or a volume name", v)
	}
	if err := cleanAbs(dst); err != nil || dst == "/" {
		return apperr.Invalid("docker volume %q: container path must be an absolute, normalized path other than /", v)
	}
	return nil
}

func cleanAbs(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"), path.Clean(p) != p, len(p) > 1024:
		return fmt.Errorf("%q is not an absolute, normalized path", p)
	case !printable(p) || strings.ContainsAny(p, ",\\"):
		return fmt.Errorf("%q has characters not allowed in a mount path", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("%q has a \"..\" element", p)
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Image references.

var (
	component    = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	registryHost = `(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?`
	repositoryRE = regexp.MustCompile(`^(` + registryHost + `)((?:/` + component + `)+)$`)
	tagRE        = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ParseRepository checks a repository with its registry, such as
// registry.example.com/team/app or 127.0.0.1:5000/app, and returns the registry
// (host[:port]) and the path in it. A registry is required: fabu pushes to the registry a
// project names, never to a default one.
func ParseRepository(repo string) (registry, name string, err error) {
	m := repositoryRE.FindStringSubmatch(repo)
	if m == nil || len(repo) > 255 {
		return "", "", apperr.Invalid("image repository %q: want registry-host[:port]/path/name in lower case, without a tag", repo)
	}
	host := m[1]
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", "", apperr.Invalid("image repository %q: begin with the registry's host (registry.example.com/%s)", repo, repo)
	}
	if h, port, ok := strings.Cut(host, ":"); ok {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || h == "" {
			return "", "", apperr.Invalid("image repository %q: bad registry port", repo)
		}
	}
	return host, strings.TrimPrefix(m[2], "/"), nil
}

// imageRefRE is an image reference as a build stage names it: a repository with an
// optional registry host and port, then an optional tag and an optional sha256 digest.
// Nothing matching it can be read as a CLI option or hold a space.
var imageRefRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

// ValidImageRef checks an image reference that a build stage runs in.
func ValidImageRef(ref string) error {
	if len(ref) > 255 || !imageRefRE.MatchString(ref) {
		return fmt.Errorf("image %q: give a reference such as node:20, registry.example.com/team/build:1.2 or one pinned by @sha256:…", ref)
	}
	return nil
}

// ValidTag checks an image tag.
func ValidTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return apperr.Invalid("image tag %q: 1-128 of A-Z a-z 0-9 _ . -, not starting with . or -", tag)
	}
	return nil
}

// ValidDigest checks a digest: sha256:<64 hex>.
func ValidDigest(d string) error {
	if !digestRE.MatchString(d) {
		return apperr.Invalid("image digest %q: want sha256:<64 hex digits>", d)
	}
	return nil
}

// Ref is an image pinned by digest: what a docker run's artifact is.
type Ref struct {
	Repository string // registry/path
	Digest     string // sha256:…
}

// String is repository@digest.
func (r Ref) String() string { return r.Repository + "@" + r.Digest }

// Registry is the ref's registry host[:port].
func (r Ref) Registry() string {
	reg, _, _ := ParseRepository(r.Repository)
	return reg
}

// ParseRef reads repository@sha256:… and validates both parts.
func ParseRef(s string) (Ref, error) {
	repo, digest, ok := strings.Cut(s, "@")
	if !ok {
		return Ref{}, apperr.Invalid("image %q is not pinned by digest (repository@sha256:…)", s)
	}
	if _, _, err := ParseRepository(repo); err != nil {
		return Ref{}, err
	}
	if err := ValidDigest(digest); err != nil {
		return Ref{}, err
	}
	return Ref{Repository: repo, Digest: digest}, nil
}

// TagOf turns a git ref (main, refs/heads/feature/x, v1.2.0) into a valid tag
// (main, feature-x, v1.2.0), or "" when nothing is left.
func TagOf(ref string) string {
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	var b strings.Builder
	for _, r := range ref {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-'):
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	t := strings.TrimLeft(b.String(), ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	if ValidTag(t) != nil {
		return ""
	}
	return t
}

// AuthFile returns a registry auth file (the "auths" of docker's config.json, which
// podman reads too) holding user's credentials for registry. Write it with mode 0600 in a
// private directory, point DOCKER_CONFIG at the directory and REGISTRY_AUTH_FILE at the file,
// and remove it after use: the password never appears on a command line.
func AuthFile(registry, user, password string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{"auth": auth}}})
	return b
}

// PasswordPlace is what a project's registry password is sealed for (libs/secret's
// additional data), binding the sealed value to the project's row.
func PasswordPlace(projectID string) string { return "projects/" + projectID + "/docker_password" }

// TLSFlags are the CLI flags for talking to the registry with s's transport: podman's
// --tls-verify=false when Insecure; docker has no such flag (its daemon decides).
func (s Settings) TLSFlags() []string {
	if s.Insecure && s.Podman() {
		return []string{"--tls-verify=false"}
	}
	return nil
}

// SortedEnv returns s.Env as KEY=VALUE, sorted.
func (s Settings) SortedEnv() []string {
	out := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
