package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/libs/apperr"
)

func loginCmd() *cobra.Command {
	var server, user string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login --server URL --user NAME [--password-stdin]",
		Short: "Log in to a fabu server and save an API token for the other commands",
		Long: "Log in to a fabu server. The password is asked for without echo, or read as one line " +
			"from stdin with --password-stdin. The login creates an API token named \"fabu cli on <host>\", " +
			"valid for 30 days, with every scope you hold. The server and token are saved in " +
			"$XDG_CONFIG_HOME/fabu/credentials.json (default ~/.config/fabu), readable only by you.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := firstNonEmpty(server, os.Getenv("FABU_SERVER"))
			if s == "" {
				return errors.New("login: --server is required")
			}
			s, err := checkServer(s)
			if err != nil {
				return err
			}
			if user == "" {
				return errors.New("login: --user is required")
			}
			password, err := readPassword(cmd, passwordStdin)
			if err != nil {
				return err
			}
			token, err := cliToken(cmd.Context(), s, user, password)
			if err != nil {
				return fmt.Errorf("log in to %s as %s: %w", s, user, err)
			}
			path, err := saveCredentials(credentials{Server: s, Token: token})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (saved in %s)\n", s, user, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "fabu server URL, e.g. https://fabu.example.com (default $FABU_SERVER)")
	cmd.Flags().StringVar(&user, "user", "", "user name")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}

// cliTokenDays is how long the API token of a CLI login lives.
const cliTokenDays = 30

// cliToken logs in with the password and returns the token to save: an API token named
// "fabu cli on <host>" (30 days, every scope the user holds) so that the CLI and long
// deploy --follow runs outlive the 15-minute access token, and the login session itself is
// ended. A server without API tokens gets its login token saved instead.
func cliToken(ctx context.Context, server, user, password string) (string, error) {
	sess, err := client.New(server, "", httpClient()).Login(ctx, user, password)
	if err != nil {
		return "", err
	}
	c := client.New(server, sess.AccessToken, httpClient())
	scopes := []string{"read", "deploy", "write"}
	if sess.User.Role == "admin" {
		scopes = []string{"admin"}
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown host"
	}
	tok, err := c.CreateAPIToken(ctx, "fabu cli on "+host, scopes, cliTokenDays)
	if apperr.Is(err, apperr.CodeNotFound) {
		return sess.AccessToken, nil
	}
	if err != nil {
		return "", fmt.Errorf("create an API token for the CLI: %w", err)
	}
	_ = c.Logout(ctx, sess.RefreshToken) // the session is no longer needed; it expires anyway
	return tok.Token, nil
}

// readPassword reads one line of stdin with --password-stdin, else prompts on the terminal
// without echo.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	var password string
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		password = string(b)
	}
	if password == "" {
		return "", errors.New("the password is empty")
	}
	return password, nil
}
