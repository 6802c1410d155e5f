package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/cmd/fabu/internal/client/clienttest"
)

// result is what one command invocation printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// execute runs `fabu args...` with the given stdin under a root command holding Commands().
func execute(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	root := &cobra.Command{Use: "fabu", SilenceErrors: true}
	root.AddCommand(Commands()...)
	var out, errOut bytes.Buffer
	root.SetIn(stdin)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return result{out.String(), errOut.String(), err}
}

// isolate gives the test its own config directory and no FABU_* environment.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("FABU_SERVER", "")
	t.Setenv("FABU_TOKEN", "")
	return dir
}

// noToken fails the test if the token shows in anything the command printed or returned.
func noToken(t *testing.T, token string, r result) {
	t.Helper()
	all := r.stdout + r.stderr
	if r.err != nil {
		all += r.err.Error()
	}
	if strings.Contains(all, token) {
		t.Errorf("the token appears in the output:\n%s", all)
	}
}

func TestLogin(t *testing.T) {
	g := clienttest.Start(t)
	tests := []struct {
		name      string
		stdin     io.Reader
		args      []string
		wantErr   string // "" for success
		wantSaved bool
	}{
		{name: "password on stdin", stdin: strings.NewReader(g.Password + "\n"), args: []string{"--password-stdin"}, wantSaved: true},
		{name: "password without newline", stdin: strings.NewReader(g.Password), args: []string{"--password-stdin"}, wantSaved: true},
		{name: "CRLF line", stdin: strings.NewReader(g.Password + "\r\nrest"), args: []string{"--password-stdin"}, wantSaved: true},
		{name: "wrong password", stdin: strings.NewReader("guess\n"), args: []string{"--password-stdin"}, wantErr: "wrong user name or password"},
		{name: "empty password", stdin: strings.NewReader("\n"), args: []string{"--password-stdin"}, wantErr: "the password is empty"},
		{name: "stdin not a terminal", stdin: strings.NewReader(g.Password + "\n"), wantErr: "--password-stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := isolate(t)
			args := append([]string{"login", "--server", g.URL + "/", "--user", g.User}, tt.args...)
			r := execute(t, tt.stdin, args...)
			noToken(t, g.Token, r)
			path := filepath.Join(dir, "fabu", "credentials.json")
			if tt.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", r.err, tt.wantErr)
				}
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("a failed login left %s (stat: %v)", path, err)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("login: %v", r.err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
			}
			if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
				t.Errorf("its directory has mode %v, want 0700", di.Mode().Perm())
			}
			b, _ := os.ReadFile(path)
			var saved credentials
			if err := json.Unmarshal(b, &saved); err != nil || saved != (credentials{Server: g.URL, Token: g.Token}) {
				t.Errorf("saved %s (%v), want server %s and the token", b, err, g.URL)
			}
		})
	}
}

func TestResolveCredentials(t *testing.T) {
	tests := []struct {
		name                  string
		saved                 *credentials
		env                   map[string]string
		flagServer, flagToken string
		want                  credentials
		wantErr               string
	}{
		{name: "flags", flagServer: "https://a.example/", flagToken: "t1", want: credentials{"https://a.example", "t1"}},
		{name: "env", env: map[string]string{"FABU_SERVER": "https://b.example", "FABU_TOKEN": "t2"}, want: credentials{"https://b.example", "t2"}},
		{name: "flags before env", flagServer: "https://a.example", env: map[string]string{"FABU_SERVER": "https://b.example", "FABU_TOKEN": "t2"}, want: credentials{"https://a.example", "t2"}},
		{name: "saved login", saved: &credentials{"https://c.example", "t3"}, want: credentials{"https://c.example", "t3"}},
		{name: "env token over saved", saved: &credentials{"https://c.example", "t3"}, env: map[string]string{"FABU_TOKEN": "t2"}, want: credentials{"https://c.example", "t2"}},
		{name: "saved token only for its server", saved: &credentials{"https://c.example", "t3"}, flagServer: "https://evil.example", wantErr: "not logged in to https://evil.example"},
		{name: "nothing", wantErr: "no server"},
		{name: "not a URL", flagServer: "fabu.example", flagToken: "t", wantErr: "not an http:// or https:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.saved != nil {
				if _, err := saveCredentials(*tt.saved); err != nil {
					t.Fatal(err)
				}
			}
			got, err := resolveCredentials(tt.flagServer, tt.flagToken)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("resolveCredentials = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestSavedLoginReadableByOthersIsRefused(t *testing.T) {
	isolate(t)
	path, err := saveCredentials(credentials{"https://c.example", "t3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveCredentials("", ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("error = %v, want a refusal that says chmod 600", err)
	}
}

func TestLoginThenDeployUsesSavedLogin(t *testing.T) {
	g := clienttest.Start(t)
	g.AddProject("shop", clienttest.Script{Final: client.StatusSucceeded})
	isolate(t)
	if r := execute(t, strings.NewReader(g.Password+"\n"), "login", "--server", g.URL, "--user", g.User, "--password-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	r := execute(t, nil, "deploy", "shop")
	noToken(t, g.Token, r)
	if r.err != nil || !strings.Contains(r.stdout, g.URL+"/runs/run-") {
		t.Errorf("deploy after login: %v, stdout %q; want the run's URL", r.err, r.stdout)
	}
}
