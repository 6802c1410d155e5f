package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// clearFabuEnv unsets every FABU_* variable for the test (restored afterwards), so the
// machine's environment cannot leak into the settings under test.
func clearFabuEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FABU_") {
			t.Setenv(k, "")
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// writeConfig writes a --config YAML file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fabu.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// resolveArgs builds a command with the flags of `fabu serve` (distributed) or `fabu up`,
// as newServeCmd and newUpCmd do, parses args and resolves the settings.
func resolveArgs(t *testing.T, distributed bool, args ...string) (serverConfig, error) {
	t.Helper()
	var cfg serverConfig
	cmd := &cobra.Command{Use: "test"}
	cfg.flags(cmd.Flags(), distributed)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	err := cfg.resolve(cmd)
	return cfg, err
}

func TestResolvePrecedence(t *testing.T) {
	file := writeConfig(t, `
addr: 127.0.0.1:7001
redis-prefix: "file:"
lock-ttl: 45s
kafka: file-kafka:9092
log-level: debug
`)
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c serverConfig)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:8080" || c.RedisPrefix != "fabu:" || c.LockTTL != 30*time.Second ||
					c.LogLevel != "info" || c.Kafka != "" || c.Postgres != "" || len(c.AllowedLocalRepos) != 0 {
					t.Errorf("got %+v, want the defaults", c)
				}
			},
		},
		{
			name: "file over default",
			args: []string{"--config", file},
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:7001" || c.RedisPrefix != "file:" || c.LockTTL != 45*time.Second ||
					c.Kafka != "file-kafka:9092" || c.LogLevel != "debug" {
					t.Errorf("got %+v, want the file's settings", c)
				}
				if c.Postgres != "" {
					t.Errorf("Postgres = %q, want the default (the file does not set it)", c.Postgres)
				}
			},
		},
		{
			name: "FABU_CONFIG names the file",
			env:  map[string]string{"FABU_CONFIG": file},
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:7001" || c.LockTTL != 45*time.Second {
					t.Errorf("got %+v, want the file's settings", c)
				}
			},
		},
		{
			name: "env over file",
			env:  map[string]string{"FABU_ADDR": "127.0.0.1:7002", "FABU_REDIS_PREFIX": "env:", "FABU_LOCK_TTL": "1m"},
			args: []string{"--config", file},
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:7002" || c.RedisPrefix != "env:" || c.LockTTL != time.Minute {
					t.Errorf("got %+v, want the environment's settings", c)
				}
				if c.Kafka != "file-kafka:9092" {
					t.Errorf("Kafka = %q, want the file's (no env var for it)", c.Kafka)
				}
			},
		},
		{
			name: "flag over env and file",
			env:  map[string]string{"FABU_ADDR": "127.0.0.1:7002", "FABU_KAFKA": "env-kafka:9092"},
			args: []string{"--config", file, "--addr", "127.0.0.1:7003", "--redis-prefix=flag:", "--lock-ttl", "2s"},
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:7003" || c.RedisPrefix != "flag:" || c.LockTTL != 2*time.Second {
					t.Errorf("got %+v, want the flags' settings", c)
				}
				if c.Kafka != "env-kafka:9092" || c.LogLevel != "debug" {
					t.Errorf("Kafka = %q, LogLevel = %q: want env-kafka:9092 from the env, debug from the file", c.Kafka, c.LogLevel)
				}
			},
		},
		{
			name: "flag set to its default still wins",
			env:  map[string]string{"FABU_ADDR": "127.0.0.1:7002"},
			args: []string{"--config", file, "--addr", "127.0.0.1:8080"},
			check: func(t *testing.T, c serverConfig) {
				if c.Addr != "127.0.0.1:8080" {
					t.Errorf("Addr = %q, want the flag's 127.0.0.1:8080", c.Addr)
				}
			},
		},
		{
			name: "allowed local repos: none by default, a list from the environment or flags",
			env:  map[string]string{"FABU_ALLOWED_LOCAL_REPOS": "/srv/git,/opt/repos"},
			check: func(t *testing.T, c serverConfig) {
				if !slices.Equal(c.AllowedLocalRepos, []string{"/srv/git", "/opt/repos"}) {
					t.Errorf("AllowedLocalRepos = %q, want /srv/git and /opt/repos", c.AllowedLocalRepos)
				}
			},
		},
		{
			name: "allowed local repos as flags",
			args: []string{"--allowed-local-repos", "/srv/git", "--allowed-local-repos", "/opt/repos"},
			check: func(t *testing.T, c serverConfig) {
				if !slices.Equal(c.AllowedLocalRepos, []string{"/srv/git", "/opt/repos"}) {
					t.Errorf("AllowedLocalRepos = %q, want /srv/git and /opt/repos", c.AllowedLocalRepos)
				}
			},
		},
		{
			name: "empty env var counts as set",
			env:  map[string]string{"FABU_REDIS_PREFIX": ""},
			args: []string{"--config", file},
			check: func(t *testing.T, c serverConfig) {
				if c.RedisPrefix != "" {
					t.Errorf("RedisPrefix = %q, want the env's empty prefix", c.RedisPrefix)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearFabuEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := resolveArgs(t, true, tc.args...)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestResolveDataDir(t *testing.T) {
	clearFabuEnv(t)
	xdg := t.TempDir()
	t.Setenv("XDG_DATA_HOME", xdg)
	c, err := resolveArgs(t, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(xdg, "fabu"); c.DataDir != want {
		t.Errorf("default DataDir = %q, want %q", c.DataDir, want)
	}

	t.Setenv("FABU_DATA_DIR", "relative/data")
	c, err = resolveArgs(t, false)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "relative", "data"); c.DataDir != want {
		t.Errorf("DataDir from a relative FABU_DATA_DIR = %q, want %q", c.DataDir, want)
	}
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		name        string
		distributed bool
		file        string // config file contents; "" for none
		env         map[string]string
		args        []string
		want        []string // substrings of the error
	}{
		{name: "unknown key", distributed: true, file: "addr: :9000\ncolour: red\n", want: []string{`"colour"`, "unknown setting"}},
		{name: "misspelt key", distributed: true, file: "redis_prefix: x\n", want: []string{`"redis_prefix"`}},
		{name: "serve-only key in up's file", file: "postgres: postgres://db/fabu\n", want: []string{`"postgres"`}},
		{name: "not YAML", distributed: true, file: "addr: [unclosed\n", want: []string{"parse config"}},
		{name: "bad duration in file", distributed: true, file: "lock-ttl: soon\n", want: []string{"setting lock-ttl in", "soon"}},
		{name: "bad duration in env", distributed: true, env: map[string]string{"FABU_LOCK_TTL": "soon"}, want: []string{"setting lock-ttl from FABU_LOCK_TTL", "soon"}},
		{name: "empty value", distributed: true, file: "postgres:\n", want: []string{`"postgres"`, "plain value"}},
		{name: "null value", distributed: true, file: "kafka: ~\n", want: []string{`"kafka"`, "plain value"}},
		{name: "list value", distributed: true, file: "addr: [a, b]\n", want: []string{`"addr"`, "plain value"}},
		{name: "missing file", distributed: true, args: []string{"--config", "/nonexistent/fabu.yaml"}, want: []string{"read config", "/nonexistent/fabu.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearFabuEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			var path string
			if tc.file != "" {
				path = writeConfig(t, tc.file)
				args = append(args, "--config", path)
			}
			_, err := resolveArgs(t, tc.distributed, args...)
			if err == nil {
				t.Fatal("resolve succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if path != "" && strings.Contains(tc.want[0], `"`) && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
		})
	}
}

// TestCommandsRejectUnknownConfigKey runs the real up and serve commands: a config file with
// an unknown key stops them before they open anything.
func TestCommandsRejectUnknownConfigKey(t *testing.T) {
	clearFabuEnv(t)
	path := writeConfig(t, "listen: 127.0.0.1:9000\n")
	for _, args := range [][]string{{"up", "--config", path}, {"serve", "all", "--config", path}} {
		root := newRoot()
		root.SetArgs(args)
		root.SetOut(&strings.Builder{})
		root.SetErr(&strings.Builder{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), `unknown setting "listen"`) {
			t.Errorf("fabu %v: error %v, want one naming the unknown setting \"listen\"", args, err)
		}
	}
	root := newRoot()
	root.SetArgs([]string{"serve"})
	root.SetOut(&strings.Builder{})
	root.SetErr(&strings.Builder{})
	if err := root.Execute(); err == nil {
		t.Error("fabu serve without a service succeeded")
	}
}

func TestPickServices(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "all", args: []string{"all"}, want: serviceNames},
		{name: "one", args: []string{"gateway"}, want: []string{"gateway"}},
		{name: "start order", args: []string{"notifier", "deployer", "auth"}, want: []string{"auth", "deployer", "notifier"}},
		{name: "duplicates", args: []string{"builder", "deployer", "builder"}, want: []string{"builder", "deployer"}},
		{name: "every one named", args: []string{"notifier", "deployer", "builder", "webhook", "gateway", "auth"}, want: serviceNames},
		{name: "unknown", args: []string{"auth", "gatway"}, wantErr: `unknown service "gatway"`},
		{name: "all among others", args: []string{"all", "auth"}, wantErr: `unknown service "all"`},
		{name: "case matters", args: []string{"Auth"}, wantErr: `unknown service "Auth"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickServices(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("pickServices(%q) = %v, %v; want error containing %q", tc.args, got, err, tc.wantErr)
				}
				for _, n := range serviceNames {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not list the known service %s", err, n)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("pickServices(%q): %v", tc.args, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pickServices(%q) = %q, want %q", tc.args, got, tc.want)
			}
		})
	}
}

func TestRedisOptions(t *testing.T) {
	cases := []struct {
		in       string
		addr     string
		user     string
		password string
		db       int
		tls      bool
		wantErr  bool
	}{
		{in: "127.0.0.1:6379", addr: "127.0.0.1:6379"},
		{in: "redis.internal:6380", addr: "redis.internal:6380"},
		{in: "redis://redis.internal:6380", addr: "redis.internal:6380"},
		{in: "redis://redis.internal", addr: "redis.internal:6379"},
		{in: "redis://:s3cret@redis.internal:6380/2", addr: "redis.internal:6380", password: "s3cret", db: 2},
		{in: "redis://fabu:s3cret@redis.internal:6379/0", addr: "redis.internal:6379", user: "fabu", password: "s3cret"},
		{in: "rediss://redis.internal:6380", addr: "redis.internal:6380", tls: true},
		{in: "redis://redis.internal:6379/not-a-db", wantErr: true},
		{in: "http://redis.internal:6379", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			o, err := redisOptions(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("redisOptions(%q) = %+v, want an error", tc.in, o)
				}
				if !strings.Contains(err.Error(), "redis URL") {
					t.Errorf("error %q does not say it is about the redis URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("redisOptions(%q): %v", tc.in, err)
			}
			if o.Addr != tc.addr || o.Username != tc.user || o.Password != tc.password || o.DB != tc.db || (o.TLSConfig != nil) != tc.tls {
				t.Errorf("redisOptions(%q) = addr %q user %q password %q db %d tls %v; want %q %q %q %d %v",
					tc.in, o.Addr, o.Username, o.Password, o.DB, o.TLSConfig != nil, tc.addr, tc.user, tc.password, tc.db, tc.tls)
			}
		})
	}
}

// TestConfigFileValuesAsWritten: a YAML number is taken as its text, not re-printed from a
// decoded value (010 would become 8 as an octal int).
func TestConfigFileValuesAsWritten(t *testing.T) {
	clearFabuEnv(t)
	path := writeConfig(t, "redis-prefix: 010\nlock-ttl: 1m30s\n")
	c, err := resolveArgs(t, true, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisPrefix != "010" || c.LockTTL != 90*time.Second {
		t.Errorf("redis-prefix %q lock-ttl %s, want 010 and 1m30s", c.RedisPrefix, c.LockTTL)
	}
}
