package clients

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

func TestNewPicksThePlatformsClient(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	tests := []struct {
		platform forge.Platform
		wantPath string // where the platform's API lists the token's repositories
	}{
		{forge.GitLab, "/api/v4/projects"},
		{forge.GitHub, "/api/v3/user/repos"},
		{forge.Gitee, "/api/v5/user/repos"},
	}
	for _, tt := range tests {
		t.Run(string(tt.platform), func(t *testing.T) {
			c, err := New(forge.Connection{Platform: tt.platform, BaseURL: srv.URL, Token: "tok"}, WithHTTPClient(srv.Client()))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.Platform(); got != tt.platform {
				t.Errorf("Platform() = %q, want %q", got, tt.platform)
			}
			if _, _, err := c.Projects(context.Background(), forge.ListOptions{Page: 1, PerPage: 10}); err != nil {
				t.Fatalf("Projects: %v", err)
			}
			mu.Lock()
			got := paths[len(paths)-1]
			mu.Unlock()
			if got != tt.wantPath {
				t.Errorf("request path = %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestNewRefusesUnknownPlatforms(t *testing.T) {
	for _, p := range []forge.Platform{"", "gitea", "GitLab"} {
		_, err := New(forge.Connection{Platform: p, BaseURL: "https://example.com", Token: "tok"})
		if apperr.CodeOf(err) != apperr.CodeInvalid {
			t.Errorf("New(%q) error = %v, want invalid", p, err)
		}
		if Supported(p) {
			t.Errorf("Supported(%q) = true", p)
		}
	}
}
