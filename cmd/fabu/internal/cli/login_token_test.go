package cli

import (
	"os"
	"strings"
	"testing"

	"fabu.dev/cmd/fabu/internal/client/clienttest"
)

// TestLoginSavesAPIToken: fabu login turns the password login into a 30-day API token named
// for this host, saves that (not the short-lived access token) and ends the login session;
// a server without API tokens gets its login token saved.
func TestLoginSavesAPIToken(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct {
		name        string
		noAPITokens bool
	}{{"API tokens", false}, {"older server", true}} {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			g := clienttest.Start(t)
			g.NoAPITokens = tt.noAPITokens
			if r := execute(t, strings.NewReader(g.Password+"\n"), "login", "--server", g.URL, "--user", g.User, "--password-stdin"); r.err != nil {
				t.Fatalf("login: %v", r.err)
			}
			saved, err := loadCredentials()
			if err != nil || saved.Token != g.Token {
				t.Fatalf("saved %+v (%v), want token %s", saved, err, g.Token)
			}
			if tt.noAPITokens {
				if got := g.APITokens(); len(got) != 0 {
					t.Errorf("API tokens %q on a server without them", got)
				}
				return
			}
			if got, want := g.APITokens(), []string{"fabu cli on " + host + " admin 30"}; len(got) != 1 || got[0] != want[0] {
				t.Errorf("API tokens made = %q, want %q", got, want)
			}
			if g.LoggedOut() != 1 {
				t.Errorf("the login session was ended %d times, want once", g.LoggedOut())
			}
			// The saved API token is what deploy uses.
			g.AddProject("site", clienttest.Script{Final: "succeeded"})
			if r := execute(t, nil, "deploy", "site"); r.err != nil {
				t.Errorf("deploy with the saved API token: %v", r.err)
			}
		})
	}
}
