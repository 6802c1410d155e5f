package main

import (
	"github.com/spf13/pflag"

	"fabu.dev/services/auth"
)

// oauthSettings configure sign-in through GitLab and GitHub (services/auth/oauth.go). A
// provider is on when its client id is set. The client secrets belong in the environment
// (FABU_OAUTH_GITLAB_CLIENT_SECRET) or the config file, not on a command line.
type oauthSettings struct {
	providers [2]oauthProviderFlags
}

type oauthProviderFlags struct {
	name           string
	url            string
	clientID       string
	clientSecret   string
	autoCreate     bool
	allowedDomains []string
	allowedGroups  []string
}

func (o *oauthSettings) flags(fs *pflag.FlagSet) {
	for i, p := range []struct{ name, label, defURL, groups string }{
		{auth.ProviderGitLab, "GitLab", "https://gitlab.com", "GitLab groups (full paths; subgroups included)"},
		{auth.ProviderGitHub, "GitHub", "https://github.com", "GitHub organizations"},
	} {
		f := &o.providers[i]
		f.name = p.name
		pre := "oauth-" + p.name + "-"
		fs.StringVar(&f.url, pre+"url", p.defURL, "auth: "+p.label+" to sign in through (self-hosted or Enterprise base URL)")
		fs.StringVar(&f.clientID, pre+"client-id", "", "auth: client id of fabu's OAuth application on "+p.label+"; enables \"Sign in with "+p.label+"\"")
		fs.StringVar(&f.clientSecret, pre+"client-secret", "", "auth: its client secret (prefer FABU_"+envName(pre)+"CLIENT_SECRET)")
		fs.BoolVar(&f.autoCreate, pre+"auto-create", false, "auth: create a user (no project roles) for a "+p.label+" account no user has linked")
		fs.StringSliceVar(&f.allowedDomains, pre+"allowed-domains", nil, "auth: auto-create only for verified emails in these domains")
		fs.StringSliceVar(&f.allowedGroups, pre+"allowed-groups", nil, "auth: auto-create only for members of these "+p.groups)
	}
}

func envName(prefix string) string {
	out := []byte(prefix)
	for i, b := range out {
		switch {
		case b == '-':
			out[i] = '_'
		case b >= 'a' && b <= 'z':
			out[i] = b - 'a' + 'A'
		}
	}
	return string(out)
}

// config is the auth service's OAuth configuration; browsers come back to publicURL.
func (o *oauthSettings) config(publicURL string) auth.OAuthConfig {
	c := auth.OAuthConfig{PublicURL: publicURL}
	for _, f := range o.providers {
		if f.clientID == "" && f.clientSecret == "" {
			continue
		}
		c.Providers = append(c.Providers, auth.OAuthProvider{Name: f.name, BaseURL: f.url, ClientID: f.clientID,
			ClientSecret: f.clientSecret, AutoCreate: f.autoCreate, AllowedDomains: f.allowedDomains, AllowedGroups: f.allowedGroups})
	}
	return c
}
