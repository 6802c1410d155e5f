package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"fabu.dev/cmd/fabu/internal/client"
	"fabu.dev/cmd/fabu/internal/client/clienttest"
	"fabu.dev/libs/apperr"
)

func TestLogin(t *testing.T) {
	g := clienttest.Start(t)
	tests := []struct {
		name, user, password string
		wantCode             apperr.Code // "" for success
		wantMsg              string
	}{
		{name: "right password", user: g.User, password: g.Password},
		{name: "wrong password", user: g.User, password: "nope", wantCode: apperr.CodeUnauthorized, wantMsg: "wrong user name or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sess, err := client.New(g.URL, "", nil).Login(context.Background(), tt.user, tt.password)
			if tt.wantCode == "" {
				if err != nil || sess.AccessToken != g.SessionToken || sess.RefreshToken == "" || sess.User.Role != "admin" {
					t.Fatalf("Login = %+v, %v; want the gateway's session", sess, err)
				}
				tok, err := client.New(g.URL, sess.AccessToken, nil).CreateAPIToken(context.Background(), "ci", []string{"read"}, 7)
				if err != nil || tok.Token != g.Token || tok.Name != "ci" {
					t.Fatalf("CreateAPIToken = %+v, %v; want the gateway's API token", tok, err)
				}
				if got := g.APITokens(); len(got) != 1 || got[0] != "ci read 7" {
					t.Errorf("the gateway made API tokens %q, want [ci read 7]", got)
				}
				if err := client.New(g.URL, sess.AccessToken, nil).Logout(context.Background(), sess.RefreshToken); err != nil || g.LoggedOut() != 1 {
					t.Errorf("Logout = %v, gateway saw %d logouts", err, g.LoggedOut())
				}
				return
			}
			if got := apperr.CodeOf(err); got != tt.wantCode {
				t.Fatalf("Login error %v has code %q, want %q", err, got, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Login error %q does not show %q", err, tt.wantMsg)
			}
		})
	}
}

func TestAnswersThatAreNotJSONErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/runs/bad-gateway":
			http.Error(w, "upstream went away", http.StatusBadGateway)
		case "/api/v1/runs/no-body":
			w.WriteHeader(http.StatusForbidden)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		runID    string
		wantCode apperr.Code
		wantMsg  string
	}{
		{"bad-gateway", apperr.CodeUnavailable, "HTTP 502: upstream went away"},
		{"no-body", apperr.CodeForbidden, "HTTP 403: Forbidden"},
		{"elsewhere", apperr.CodeNotFound, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.runID, func(t *testing.T) {
			_, err := client.New(srv.URL, "t", nil).GetRun(context.Background(), tt.runID)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != tt.wantCode {
				t.Fatalf("GetRun error = %#v, want an *apperr.Error with code %q", err, tt.wantCode)
			}
			if !strings.Contains(ae.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", ae.Message, tt.wantMsg)
			}
		})
	}
}

func TestAuthorizationIsRequired(t *testing.T) {
	g := clienttest.Start(t)
	_, err := client.New(g.URL, "wrong-token", nil).Projects(context.Background())
	if apperr.CodeOf(err) != apperr.CodeUnauthorized || !strings.Contains(err.Error(), "missing or invalid token") {
		t.Fatalf("Projects with a wrong token: %v, want unauthorized with the server's message", err)
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	g := clienttest.Start(t)
	c := client.New(g.URL+"/", g.Token, nil) // a trailing slash must not matter
	doc := client.ApplyDoc{
		Servers:  []client.ServerSpec{{Name: "web1", Host: "10.0.0.1", Port: 22, User: "deploy", HostKey: "10.0.0.1 ssh-ed25519 AAAA"}},
		Projects: []client.ProjectSpec{{Name: "shop", GitURL: "https://git.example.com/shop.git", DeployPath: "/srv/shop", Servers: []string{"web1"}}},
	}
	for i, want := range []string{client.ActionCreated, client.ActionUnchanged} {
		res, err := c.Apply(context.Background(), doc)
		if err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
		wantRes := client.ApplyResult{Servers: []client.ApplyItem{{"web1", want}}, Projects: []client.ApplyItem{{"shop", want}}}
		if !slices.Equal(res.Servers, wantRes.Servers) || !slices.Equal(res.Projects, wantRes.Projects) {
			t.Errorf("apply #%d = %+v, want %+v", i+1, res, wantRes)
		}
	}
	if got := g.Applied()[0].Projects[0].Servers; !slices.Equal(got, []string{"web1"}) {
		t.Errorf("project servers sent = %v, want [web1] by name", got)
	}

	doc.Projects[0].Servers = []string{"web9"}
	_, err := c.Apply(context.Background(), doc)
	if apperr.CodeOf(err) != apperr.CodeInvalid || !strings.Contains(err.Error(), `no server named "web9"`) {
		t.Errorf("apply with an unknown server: %v, want invalid naming web9", err)
	}
}

func TestProjectByNameAndStartRun(t *testing.T) {
	g := clienttest.Start(t)
	g.AddProject("api", clienttest.Script{Final: client.StatusSucceeded})
	g.AddProject("shop", clienttest.Script{Final: client.StatusSucceeded})
	c := client.New(g.URL, g.Token, nil)
	ctx := context.Background()

	p, err := c.ProjectByName(ctx, "shop")
	if err != nil || p.Name != "shop" || p.ID == "" {
		t.Fatalf("ProjectByName(shop) = %+v, %v", p, err)
	}
	if _, err := c.ProjectByName(ctx, "nope"); apperr.CodeOf(err) != apperr.CodeNotFound {
		t.Errorf("ProjectByName(nope) error = %v, want not_found", err)
	}
	run, err := c.StartRun(ctx, p.ID, "v1.2.0")
	if err != nil || run.ID == "" || run.Ref != "v1.2.0" || run.Project != "shop" {
		t.Fatalf("StartRun = %+v, %v", run, err)
	}
	if _, err := c.StartRun(ctx, "prj-missing", ""); apperr.CodeOf(err) != apperr.CodeNotFound || !strings.Contains(err.Error(), "project not found") {
		t.Errorf("StartRun of a missing project: %v, want not_found with the server's message", err)
	}
	got, err := c.GetRun(ctx, run.ID)
	if err != nil || got.ID != run.ID || got.Status != client.StatusSucceeded || got.FinishedAt == nil {
		t.Errorf("GetRun = %+v, %v", got, err)
	}
	if want := g.URL + "/runs/" + run.ID; c.RunURL(run.ID) != want {
		t.Errorf("RunURL = %q, want %q", c.RunURL(run.ID), want)
	}
}
