// Package cli holds the client commands of the fabu binary — login, apply and deploy — which
// talk to a fabu server through its HTTP API.
package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"fabu.dev/cmd/fabu/internal/client"
)

// Commands returns the login, apply, deploy and rollback commands, for the root command to register.
// Their errors are returned, not printed; the root command shows them and exits with 1.
func Commands() []*cobra.Command {
	return []*cobra.Command{loginCmd(), applyCmd(), deployCmd(), rollbackCmd()}
}

// httpClient bounds each request; log streaming is unaffected because the WebSocket library
// applies the timeout to the handshake only.
func httpClient() *http.Client { return &http.Client{Timeout: time.Minute} }

// remote holds the --server and --token flags of a command that calls the API.
type remote struct {
	server string
	token  string
}

func (r *remote) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.server, "server", "", "fabu server URL (default $FABU_SERVER, then the saved login)")
	cmd.Flags().StringVar(&r.token, "token", "", "API token (default $FABU_TOKEN, then the saved login)")
}

// client returns an API client for the server and token found in the flags, then the
// environment, then the credentials file.
func (r *remote) client() (*client.Client, error) {
	creds, err := resolveCredentials(r.server, r.token)
	if err != nil {
		return nil, err
	}
	return client.New(creds.Server, creds.Token, httpClient()), nil
}

// resolveCredentials picks the server and the token, each from the flag, else the
// environment, else the saved login. The saved token is only used for the saved server, so a
// token is never sent to a server it was not issued by.
func resolveCredentials(flagServer, flagToken string) (credentials, error) {
	c := credentials{
		Server: firstNonEmpty(flagServer, os.Getenv("FABU_SERVER")),
		Token:  firstNonEmpty(flagToken, os.Getenv("FABU_TOKEN")),
	}
	if c.Server == "" || c.Token == "" {
		saved, err := loadCredentials()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return credentials{}, err
		}
		if c.Server == "" {
			c.Server = saved.Server
		}
		if c.Token == "" && saved.Server != "" && normalizeServer(c.Server) == normalizeServer(saved.Server) {
			c.Token = saved.Token
		}
	}
	if c.Server == "" {
		return credentials{}, errors.New("no server: pass --server, set FABU_SERVER or run fabu login")
	}
	server, err := checkServer(c.Server)
	if err != nil {
		return credentials{}, err
	}
	c.Server = server
	if c.Token == "" {
		return credentials{}, fmt.Errorf("not logged in to %s: run fabu login --server %s, or pass --token or FABU_TOKEN", server, server)
	}
	return c, nil
}

// checkServer validates a server URL and returns it without a trailing slash.
func checkServer(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q is not an http:// or https:// URL", s)
	}
	return normalizeServer(s), nil
}

func normalizeServer(s string) string { return strings.TrimRight(s, "/") }

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
