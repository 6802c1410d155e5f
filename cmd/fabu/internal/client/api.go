package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"fabu.dev/libs/apperr"
)

// Session is what a password login returns: a short-lived access token and the refresh
// token that renews it.
type Session struct {
	AccessToken  string `json:"access_token"`
	Token        string `json:"token"` // the access token, as servers before refresh tokens named it
	RefreshToken string `json:"refresh_token"`
	User         struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Role     string `json:"role"`
	} `json:"user"`
}

// Login exchanges a user name and password for a session (POST /api/v1/auth/login).
func (c *Client) Login(ctx context.Context, user, password string) (Session, error) {
	in := struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{user, password}
	var out Session
	if err := c.do(ctx, "POST", "/api/v1/auth/login", in, &out); err != nil {
		return Session{}, err
	}
	if out.AccessToken == "" {
		out.AccessToken = out.Token
	}
	if out.AccessToken == "" {
		return Session{}, fmt.Errorf("login: the server answered without a token")
	}
	return out, nil
}

// APIToken is a new API token; Token is shown only in this answer.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
	Token     string    `json:"token"`
}

// CreateAPIToken makes an API token of the signed-in user (POST /api/v1/auth/api-tokens).
func (c *Client) CreateAPIToken(ctx context.Context, name string, scopes []string, days int) (APIToken, error) {
	in := struct {
		Name          string   `json:"name"`
		Scopes        []string `json:"scopes"`
		ExpiresInDays int      `json:"expires_in_days"`
	}{name, scopes, days}
	var out APIToken
	if err := c.do(ctx, "POST", "/api/v1/auth/api-tokens", in, &out); err != nil {
		return APIToken{}, err
	}
	if out.Token == "" {
		return APIToken{}, fmt.Errorf("create API token: the server answered without a token")
	}
	return out, nil
}

// Logout ends the client's session, and the one of refreshToken if not empty
// (POST /api/v1/auth/logout).
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	var in any
	if refreshToken != "" {
		in = struct {
			RefreshToken string `json:"refresh_token"`
		}{refreshToken}
	}
	return c.do(ctx, "POST", "/api/v1/auth/logout", in, nil)
}

// Apply upserts servers and projects by name in one transaction (POST /api/v1/apply).
func (c *Client) Apply(ctx context.Context, doc ApplyDoc) (ApplyResult, error) {
	// Send empty lists rather than null: the server decodes strictly.
	if doc.Servers == nil {
		doc.Servers = []ServerSpec{}
	}
	if doc.Projects == nil {
		doc.Projects = []ProjectSpec{}
	}
	for i := range doc.Projects {
		if doc.Projects[i].Servers == nil {
			doc.Projects[i].Servers = []string{}
		}
	}
	var out ApplyResult
	err := c.do(ctx, "POST", "/api/v1/apply", doc, &out)
	return out, err
}

// Projects lists the projects (GET /api/v1/projects).
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/v1/projects", nil, &raw); err != nil {
		return nil, err
	}
	// The list is a JSON array; a {"projects": [...]} envelope is accepted as well.
	var list []Project
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var env struct {
		Projects []Project `json:"projects"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("decode project list: %w", err)
	}
	return env.Projects, nil
}

// ProjectByName returns the project called name, or an apperr not_found error.
func (c *Client) ProjectByName(ctx context.Context, name string) (Project, error) {
	list, err := c.Projects(ctx)
	if err != nil {
		return Project{}, err
	}
	for _, p := range list {
		if p.Name == name {
			return p, nil
		}
	}
	return Project{}, apperr.NotFound("no project named %q", name)
}

// StartRun requests a deploy of ref (empty: the project's branch) of the project
// (POST /api/v1/projects/:id/runs).
func (c *Client) StartRun(ctx context.Context, projectID, ref string) (Run, error) {
	in := struct {
		Ref string `json:"ref,omitempty"`
	}{ref}
	var run Run
	err := c.do(ctx, "POST", "/api/v1/projects/"+url.PathEscape(projectID)+"/runs", in, &run)
	return run, err
}

// Rollback requests a run that puts the release of succeeded run runID back on its
// servers (POST /api/v1/runs/:id/rollback).
func (c *Client) Rollback(ctx context.Context, runID string) (Run, error) {
	var run Run
	err := c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(runID)+"/rollback", nil, &run)
	return run, err
}

// GetRun returns one run (GET /api/v1/runs/:id).
func (c *Client) GetRun(ctx context.Context, runID string) (Run, error) {
	var run Run
	err := c.do(ctx, "GET", "/api/v1/runs/"+url.PathEscape(runID), nil, &run)
	return run, err
}

// Logs returns the run's log lines numbered above after, as many as the server pages at once
// (GET /api/v1/runs/:id/logs?after=N).
func (c *Client) Logs(ctx context.Context, runID string, after int64) (LogPage, error) {
	var page LogPage
	path := "/api/v1/runs/" + url.PathEscape(runID) + "/logs?after=" + strconv.FormatInt(after, 10)
	err := c.do(ctx, "GET", path, nil, &page)
	return page, err
}
