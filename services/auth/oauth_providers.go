package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// idTokenAlgs are the id_token signatures accepted: asymmetric ones only, never "none" and
// never HMAC with the client secret.
var idTokenAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// gitlabProvider signs in through GitLab's OpenID Connect provider. Discovery
// (<base>/.well-known/openid-configuration) happens at the first sign-in and is kept once it
// worked, so fabu starts while GitLab is down.
type gitlabProvider struct {
	cfg      OAuthProvider
	client   *http.Client
	redirect string
	now      func() time.Time

	mu   sync.Mutex
	prov *oidc.Provider
}

func (g *gitlabProvider) config() OAuthProvider { return g.cfg }

func (g *gitlabProvider) discover(ctx context.Context) (*oidc.Provider, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.prov != nil {
		return g.prov, nil
	}
	// The issuer must be the base URL exactly; go-oidc refuses a discovery document naming
	// another issuer.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, g.client), g.cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: OpenID discovery at %s: %w", errProvider, g.cfg.BaseURL, err)
	}
	g.prov = p
	return p, nil
}

func (g *gitlabProvider) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: g.cfg.ClientID, ClientSecret: g.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: g.redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

func (g *gitlabProvider) authCodeURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	p, err := g.discover(ctx)
	if err != nil {
		return "", err
	}
	return g.oauth2(p).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil
}

// gitlabClaims are the id_token claims fabu reads.
type gitlabClaims struct {
	Email             string `json:"email"`
	EmailVerified     bool   `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
	Nickname          string `json:"nickname"`
}

func (g *gitlabProvider) identify(ctx context.Context, code, verifier, nonce string) (identity, error) {
	p, err := g.discover(ctx)
	if err != nil {
		return identity{}, err
	}
	ctx = oidc.ClientContext(ctx, g.client)
	tok, err := g.oauth2(p).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return identity{}, fmt.Errorf("%w: exchange the code: %w", errProvider, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity{}, fmt.Errorf("%w: the token answer has no id_token", errProvider)
	}
	// Signature (through the JWKS), issuer, audience (our client id) and expiry.
	idt, err := p.Verifier(&oidc.Config{ClientID: g.cfg.ClientID, SupportedSigningAlgs: idTokenAlgs, Now: g.now}).Verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("%w: id_token: %w", errProvider, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return identity{}, fmt.Errorf("%w: id_token: nonce does not match this sign-in", errProvider)
	}
	if idt.Subject == "" {
		return identity{}, fmt.Errorf("%w: id_token has no subject", errProvider)
	}
	var cl gitlabClaims
	if err := idt.Claims(&cl); err != nil {
		return identity{}, fmt.Errorf("%w: id_token claims: %w", errProvider, err)
	}
	id := identity{Subject: idt.Subject, Login: cl.PreferredUsername}
	if id.Login == "" {
		id.Login = cl.Nickname
	}
	if cl.EmailVerified {
		id.Email = strings.ToLower(cl.Email)
	}
	if len(g.cfg.AllowedGroups) > 0 {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return identity{}, fmt.Errorf("%w: userinfo: %w", errProvider, err)
		}
		if ui.Subject != idt.Subject {
			return identity{}, fmt.Errorf("%w: userinfo is about another user", errProvider)
		}
		var groups struct {
			Groups []string `json:"groups"`
		}
		if err := ui.Claims(&groups); err != nil {
			return identity{}, fmt.Errorf("%w: userinfo groups: %w", errProvider, err)
		}
		id.Groups = groups.Groups
	}
	return id, nil
}

// githubProvider signs in through a GitHub OAuth app (github.com or GitHub Enterprise).
type githubProvider struct {
	cfg    OAuthProvider
	client *http.Client
	oauth  *oauth2.Config
	api    string
}

func newGitHubProvider(cfg OAuthProvider, client *http.Client, redirect string) *githubProvider {
	api := cfg.BaseURL + "/api/v3"
	if cfg.BaseURL == "https://github.com" {
		api = "https://api.github.com"
	}
	scopes := []string{"read:user", "user:email"}
	if len(cfg.AllowedGroups) > 0 {
		scopes = append(scopes, "read:org")
	}
	return &githubProvider{cfg: cfg, client: client, api: api, oauth: &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: cfg.BaseURL + "/login/oauth/authorize", TokenURL: cfg.BaseURL + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams},
	}}
}

func (g *githubProvider) config() OAuthProvider { return g.cfg }

func (g *githubProvider) authCodeURL(_ context.Context, state, _, verifier string) (string, error) {
	return g.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func (g *githubProvider) identify(ctx context.Context, code, verifier, _ string) (identity, error) {
	tok, err := g.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, g.client), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return identity{}, fmt.Errorf("%w: exchange the code: %w", errProvider, err)
	}
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
	}
	if err := g.get(ctx, tok.AccessToken, "/user", &user); err != nil {
		return identity{}, err
	}
	if user.ID <= 0 {
		return identity{}, fmt.Errorf("%w: /user has no id", errProvider)
	}
	id := identity{Subject: strconv.FormatInt(user.ID, 10), Login: user.Login}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := g.get(ctx, tok.AccessToken, "/user/emails", &emails); err != nil {
		return identity{}, err
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			id.Email = strings.ToLower(e.Email)
		}
	}
	if len(g.cfg.AllowedGroups) > 0 {
		var orgs []struct {
			Login string `json:"login"`
		}
		if err := g.get(ctx, tok.AccessToken, "/user/orgs?per_page=100", &orgs); err != nil {
			return identity{}, err
		}
		for _, o := range orgs {
			id.Groups = append(id.Groups, strings.ToLower(o.Login))
		}
	}
	return id, nil
}

// get reads the API's JSON answer at path into out.
func (g *githubProvider) get(ctx context.Context, token, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errProvider, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", errProvider, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", errProvider, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: HTTP %d", errProvider, path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: GET %s: %w", errProvider, path, err)
	}
	return nil
}
