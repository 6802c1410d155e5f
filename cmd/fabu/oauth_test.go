package main

import (
	"slices"
	"testing"

	"fabu.dev/services/auth"
)

// TestOAuthSettings: sign-in providers come from flags, FABU_OAUTH_* variables and the
// config file like every setting, and only providers with a client id are configured.
func TestOAuthSettings(t *testing.T) {
	clearFabuEnv(t)
	file := writeConfig(t, `
oauth-github-client-id: Iv1.file
oauth-github-auto-create: true
oauth-github-allowed-groups: fabu-org,other-org
`)
	t.Setenv("FABU_OAUTH_GITLAB_URL", "https://gitlab.example.com/")
	t.Setenv("FABU_OAUTH_GITLAB_CLIENT_ID", "gl-id")
	t.Setenv("FABU_OAUTH_GITLAB_CLIENT_SECRET", "gl-secret")
	t.Setenv("FABU_OAUTH_GITHUB_CLIENT_SECRET", "gh-secret")
	cfg, err := resolveArgs(t, false, "--config", file, "--public-url", "https://fabu.example.com",
		"--oauth-gitlab-allowed-domains", "example.com", "--oauth-gitlab-auto-create")
	if err != nil {
		t.Fatal(err)
	}
	oc := cfg.OAuth.config(cfg.PublicURL)
	if oc.PublicURL != "https://fabu.example.com" || len(oc.Providers) != 2 {
		t.Fatalf("config = %+v", oc)
	}
	gl, gh := oc.Providers[0], oc.Providers[1]
	if gl.Name != auth.ProviderGitLab || gl.BaseURL != "https://gitlab.example.com/" || gl.ClientID != "gl-id" || gl.ClientSecret != "gl-secret" ||
		!gl.AutoCreate || !slices.Equal(gl.AllowedDomains, []string{"example.com"}) {
		t.Errorf("gitlab = %+v", gl)
	}
	if gh.Name != auth.ProviderGitHub || gh.BaseURL != "https://github.com" || gh.ClientID != "Iv1.file" || gh.ClientSecret != "gh-secret" ||
		!gh.AutoCreate || !slices.Equal(gh.AllowedGroups, []string{"fabu-org", "other-org"}) {
		t.Errorf("github = %+v", gh)
	}
	clearFabuEnv(t)
	none, err := resolveArgs(t, false)
	if err != nil {
		t.Fatal(err)
	}
	if oc := none.OAuth.config(none.PublicURL); len(oc.Providers) != 0 {
		t.Errorf("without client ids: %+v, want no providers", oc.Providers)
	}
}
