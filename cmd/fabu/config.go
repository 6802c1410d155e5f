package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// serverConfig is the configuration of a server process (`up` or `serve`). Each field is a
// flag; a flag not given on the command line is taken from the environment variable
// FABU_<FLAG> (dashes as underscores), then from the --config file, then its default.
type serverConfig struct {
	Addr        string
	DataDir     string
	Postgres    string
	Kafka       string
	Redis       string
	RedisPrefix string
	AuthURL     string
	WebhookURL  string
	// PublicURL is the base URL git platforms reach fabu at (for the hooks it installs);
	// empty means http://<addr>.
	PublicURL  string
	LogLevel   string
	LockTTL    time.Duration
	ConfigFile string
	// MasterKeyFile names the file of master keys (serve); FABU_MASTER_KEY takes precedence.
	MasterKeyFile string
	// ArtifactURL is the base URL at which deployers reach the builder for artifacts;
	// empty means http://<addr>.
	ArtifactURL string
	// ArtifactRetention is how many days the builder keeps artifacts (0: forever).
	ArtifactRetention int
	// OAuth configures sign-in through GitLab and GitHub (oauth.go).
	OAuth oauthSettings
	// AuditRetention and LogRetention are how many days the gateway keeps audit entries and
	// the logs of finished runs (0: forever).
	AuditRetention int
	LogRetention   int
	// DeliveryRetention is how many days the webhook service keeps received deliveries and
	// its counts of refused ones (0: forever).
	DeliveryRetention int
	// ContainerCLI is the container CLI the builder builds and pushes docker images with.
	ContainerCLI string
	// BuildSandbox isolates build stages: bwrap (bubblewrap, the default) or none (an
	// explicit, warned opt-out); BuildUID is the uid and gid stages run as when fabu is
	// root; BuildReadOnly adds read-only toolchain trees to the sandbox.
	BuildSandbox  string
	BuildUID      int
	BuildReadOnly []string
	// AllowedLocalRepos are the directories under which a project's git_url may name a
	// repository on this machine (a path or file:// URL); none by default.
	AllowedLocalRepos []string
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "fabu")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "fabu")
	}
	return ".fabu-data"
}

func (c *serverConfig) flags(fs *pflag.FlagSet, distributed bool) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on for HTTP")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir(), "directory for the database (embedded mode), workspaces, artifacts and the SSH key")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&c.LockTTL, "lock-ttl", 30*time.Second, "lease of a deploy target's lock; workers renew it while they run")
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file of settings, keyed by flag name")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL git platforms reach fabu at, for the webhooks it installs (default http://<addr>)")
	fs.StringVar(&c.ArtifactURL, "artifact-url", "", "builder: base URL at which deployers on other machines download artifacts from this builder (default http://<addr>)")
	c.OAuth.flags(fs)
	fs.IntVar(&c.ArtifactRetention, "artifact-retention", 30, "builder: days to keep artifacts; each project's latest succeeded run keeps its artifact regardless (0 keeps all)")
	fs.StringVar(&c.ContainerCLI, "container-cli", "docker", "builder: docker, podman or an absolute path to one of them, to build and push docker projects' images")
	fs.StringVar(&c.BuildSandbox, "build-sandbox", "bwrap", "builder: isolate build stages with bubblewrap (bwrap), or none: builds then see everything fabu can, its keys and database included")
	fs.IntVar(&c.BuildUID, "build-uid", 0, "builder: uid and gid build stages run as when fabu runs as root (default 65534)")
	fs.StringSliceVar(&c.BuildReadOnly, "build-readonly-paths", nil, "builder: more directories build stages see read-only, for toolchains outside /usr and /opt")
	fs.IntVar(&c.AuditRetention, "audit-retention", 365, "gateway: days to keep audit log entries (0 keeps all)")
	fs.IntVar(&c.LogRetention, "log-retention", 30, "gateway: days to keep the logs of finished runs (0 keeps all)")
	fs.StringSliceVar(&c.AllowedLocalRepos, "allowed-local-repos", nil,
		"gateway: absolute directories under which a project's git_url may be a local path or file:// URL, comma-separated (default: none; only remote repositories)")
	fs.IntVar(&c.DeliveryRetention, "delivery-retention", 365, "webhook: days to keep received webhook deliveries and counts of refused ones (0 keeps all)")
	if distributed {
		fs.StringVar(&c.Postgres, "postgres", "", "PostgreSQL connection string (required)")
		fs.StringVar(&c.Kafka, "kafka", "", "Kafka brokers, comma-separated (required)")
		fs.StringVar(&c.Redis, "redis", "", "Redis address host:port or redis:// URL (required for builder and deployer)")
		fs.StringVar(&c.RedisPrefix, "redis-prefix", "fabu:", "prefix of every Redis key")
		fs.StringVar(&c.AuthURL, "auth-url", "", "gateway: base URL of the auth service, when it runs in another process")
		fs.StringVar(&c.WebhookURL, "webhook-url", "", "gateway: base URL of the webhook service, when it runs in another process")
		fs.StringVar(&c.MasterKeyFile, "master-key-file", "", "file of the master keys that seal secrets (or FABU_MASTER_KEY: base64 keys, newest first)")
	}
}

// resolve fills flags not set on the command line from the environment and the config file.
func (c *serverConfig) resolve(cmd *cobra.Command) error {
	path := c.ConfigFile
	if path == "" {
		path = os.Getenv("FABU_CONFIG")
	}
	file, err := readConfigFile(path)
	if err != nil {
		return err
	}
	fs := cmd.Flags()
	for key := range file {
		if fs.Lookup(key) == nil {
			return fmt.Errorf("config %s: unknown setting %q", path, key)
		}
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		env := "FABU_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("setting %s from %s: %w", f.Name, env, serr)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("setting %s in %s: %w", f.Name, path, serr)
			}
		}
	})
	if err != nil {
		return err
	}
	abs, aerr := filepath.Abs(c.DataDir)
	if aerr != nil {
		return fmt.Errorf("data dir: %w", aerr)
	}
	c.DataDir = abs
	for _, d := range []struct {
		name string
		days int
	}{{"artifact-retention", c.ArtifactRetention}, {"audit-retention", c.AuditRetention}, {"log-retention", c.LogRetention},
		{"delivery-retention", c.DeliveryRetention}} {
		if d.days < 0 {
			return fmt.Errorf("%s %d: must be a number of days, 0 for no limit", d.name, d.days)
		}
	}
	if err := c.resolvePublicURL(); err != nil {
		return err
	}
	return c.resolveArtifactURL()
}

// resolveArtifactURL checks --artifact-url, or makes it http://<addr> like the public URL.
func (c *serverConfig) resolveArtifactURL() error {
	v, err := baseURL("artifact-url", c.ArtifactURL, c.Addr)
	c.ArtifactURL = v
	return err
}

// resolvePublicURL checks --public-url, or makes it http://<addr> (localhost for an address
// without a host).
func (c *serverConfig) resolvePublicURL() error {
	v, err := baseURL("public-url", c.PublicURL, c.Addr)
	c.PublicURL = v
	return err
}

// baseURL checks the base URL v of setting name, or makes it http://<addr> (localhost for
// an address without a host) when v is empty.
func baseURL(name, v, addr string) (string, error) {
	if v == "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "http://" + addr, nil
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		return "http://" + net.JoinHostPort(host, port), nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return v, fmt.Errorf("%s %q must be an http(s) URL without credentials, query or fragment", name, v)
	}
	return strings.TrimRight(v, "/"), nil
}

// readConfigFile reads a YAML mapping of setting names to plain values, exactly as written:
// a YAML number such as 010 stays "010", and an empty, null or structured value is an error
// rather than the text "<nil>" or "[a b]".
func readConfigFile(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	for key, n := range doc {
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return nil, fmt.Errorf("config %s: setting %q (line %d) must be a plain value", path, key, n.Line)
		}
		out[key] = n.Value
	}
	return out, nil
}
