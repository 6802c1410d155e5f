package auth

// Sign-in through GitLab (OpenID Connect) and GitHub (OAuth2), for users of those platforms.
//
// The browser goes to /oauth/<provider>/start, which remembers a flow server-side (state,
// nonce, a PKCE verifier derived from a random handle) and gives the browser only the handle
// in a short-lived HttpOnly cookie, then redirects to the provider. The provider sends the
// browser back to /oauth/<provider>/callback, which checks the state against the cookie's
// flow (once), exchanges the code with the verifier, verifies who signed in (GitLab: the
// id_token's signature through the JWKS, issuer, audience, expiry and nonce; GitHub: the
// API's user and verified primary email) and maps that identity to a fabu user. Tokens never
// travel in a URL: the callback redirects to the SPA with a one-time code in the fragment,
// which the SPA exchanges, with the same cookie, for the token pair by POST.
//
// Only identities already linked to a user sign in. An unknown identity is refused unless
// the provider auto-provisions, which creates a new user with no project roles (optionally
// only for allowed email domains or GitLab groups / GitHub organizations). An identity is
// never linked to an existing user by its email: a signed-in user links it from the Account
// page (POST /oauth/<provider>/link, then the same redirect flow).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Sign-in provider kinds.
const (
	ProviderGitLab = "gitlab"
	ProviderGitHub = "github"
)

// OAuthProvider configures one sign-in provider.
type OAuthProvider struct {
	// Name is ProviderGitLab or ProviderGitHub; it is the provider's path segment and the
	// provider column of linked identities.
	Name string
	// BaseURL is the platform's address: https://gitlab.com or a self-hosted GitLab (its
	// OpenID issuer), https://github.com or a GitHub Enterprise server. Defaults to the
	// public platform.
	BaseURL      string
	ClientID     string
	ClientSecret string
	// AutoCreate creates a fabu user (system role user, no project roles) for an identity
	// that is not linked yet, instead of refusing it.
	AutoCreate bool
	// AllowedDomains limits auto-creation to verified emails in these domains.
	AllowedDomains []string
	// AllowedGroups limits auto-creation to members of these GitLab groups (full paths;
	// subgroups included) or GitHub organizations (logins).
	AllowedGroups []string
}

// OAuthConfig configures sign-in through providers.
type OAuthConfig struct {
	// PublicURL is the base URL browsers reach fabu at; the callback registered with each
	// provider is PublicURL + /api/v1/auth/oauth/<name>/callback. Cookies are Secure when
	// it is https.
	PublicURL string
	Providers []OAuthProvider
	// HTTPClient talks to the providers; nil means a client with a 15 s timeout.
	HTTPClient *http.Client
	FlowTTL    time.Duration // how long a browser has to come back from the provider [10m]
	CodeTTL    time.Duration // how long the SPA has to exchange the one-time code [1m]
}

// validate fills defaults and checks c.
func (c *OAuthConfig) validate() error {
	if c.FlowTTL == 0 {
		c.FlowTTL = 10 * time.Minute
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if len(c.Providers) == 0 {
		return nil
	}
	if _, err := parseBaseURL("public URL", c.PublicURL); err != nil {
		return fmt.Errorf("auth: sign-in providers need the public URL: %w", err)
	}
	seen := map[string]bool{}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Name != ProviderGitLab && p.Name != ProviderGitHub {
			return fmt.Errorf("auth: sign-in provider %q: must be %s or %s", p.Name, ProviderGitLab, ProviderGitHub)
		}
		if seen[p.Name] {
			return fmt.Errorf("auth: sign-in provider %s configured twice", p.Name)
		}
		seen[p.Name] = true
		if p.BaseURL == "" {
			p.BaseURL = map[string]string{ProviderGitLab: "https://gitlab.com", ProviderGitHub: "https://github.com"}[p.Name]
		}
		base, err := parseBaseURL(p.Name+" URL", p.BaseURL)
		if err != nil {
			return fmt.Errorf("auth: sign-in provider %s: %w", p.Name, err)
		}
		p.BaseURL = base
		if p.ClientID == "" || p.ClientSecret == "" {
			return fmt.Errorf("auth: sign-in provider %s needs a client id and a client secret", p.Name)
		}
		p.AllowedDomains = normalizeList(p.AllowedDomains, true)
		p.AllowedGroups = normalizeList(p.AllowedGroups, p.Name == ProviderGitHub)
		if !p.AutoCreate && (len(p.AllowedDomains) > 0 || len(p.AllowedGroups) > 0) {
			return fmt.Errorf("auth: sign-in provider %s: allowed domains and groups limit auto-creation, which is off", p.Name)
		}
	}
	return nil
}

func normalizeList(in []string, lower bool) []string {
	var out []string
	for _, v := range in {
		v = strings.Trim(strings.TrimSpace(v), "/")
		if lower {
			v = strings.ToLower(v)
		}
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// parseBaseURL checks an http(s) base URL without credentials, query or fragment and
// returns it without a trailing slash.
func parseBaseURL(what, v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s %q must be an http(s) URL without credentials, query or fragment", what, v)
	}
	return strings.TrimRight(v, "/"), nil
}

// identity is who signed in at a provider.
type identity struct {
	Subject string // the provider's stable user id
	Login   string // user name at the provider
	Email   string // verified email, or ""
	// Groups are the GitLab group paths or GitHub organization logins of the user; they are
	// fetched only when auto-creation is limited to groups.
	Groups []string
}

// provider is one sign-in provider.
type provider interface {
	// authCodeURL is where the browser signs in.
	authCodeURL(ctx context.Context, state, nonce, verifier string) (string, error)
	// identify exchanges code for tokens and returns who signed in.
	identify(ctx context.Context, code, verifier, nonce string) (identity, error)
	config() OAuthProvider
}

// errProvider wraps what went wrong talking to a provider or verifying its answer: the
// browser is told only that the provider's answer was not accepted.
var errProvider = errors.New("the sign-in provider's answer was not accepted")

func newProviders(c OAuthConfig, now func() time.Time) map[string]provider {
	out := map[string]provider{}
	for _, p := range c.Providers {
		redirect := c.PublicURL + "/api/v1/auth/oauth/" + p.Name + "/callback"
		switch p.Name {
		case ProviderGitLab:
			out[p.Name] = &gitlabProvider{cfg: p, client: c.HTTPClient, redirect: redirect, now: now}
		case ProviderGitHub:
			out[p.Name] = newGitHubProvider(p, c.HTTPClient, redirect)
		}
	}
	return out
}

// ProviderView is a configured sign-in provider as GET /auth/providers lists it.
type ProviderView struct {
	Name  string `json:"name"`
	Label string `json:"label"`
}

// providersList answers the configured sign-in providers; it is public, for the login page.
func (s *Service) providersList(c *gin.Context) {
	out := []ProviderView{}
	for _, p := range s.cfg.OAuth.Providers {
		out = append(out, ProviderView{Name: p.Name, Label: map[string]string{ProviderGitLab: "GitLab", ProviderGitHub: "GitHub"}[p.Name]})
	}
	c.JSON(http.StatusOK, out)
}

// oauthRoutes mounts sign-in through providers on g (/api/v1/auth).
func (s *Service) oauthRoutes(g gin.IRouter) {
	g.GET("/providers", s.providersList)
	g.GET("/oauth/:provider/start", s.oauthStart)
	g.GET("/oauth/:provider/callback", s.oauthCallback)
	g.POST("/oauth/:provider/link", s.requireSession, s.oauthLink)
	g.POST("/oauth/exchange", s.sameOrigin, s.oauthExchange) // sets the refresh cookie (cookie.go)
	g.GET("/identities", s.requireAuth, s.listIdentities)
	g.DELETE("/identities/:provider", s.requireSession, s.unlinkIdentity)
}
