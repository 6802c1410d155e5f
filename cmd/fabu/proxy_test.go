package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/httpx"
)

// TestProxySendsSecurityHeadersOnce: when the gateway forwards to a service in another
// process, both engines set the security headers; the answer carries each once.
func TestProxySendsSecurityHeadersOnce(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	upstream := httpx.NewEngine(log)
	upstream.POST("/api/v1/auth/login", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	up := httptest.NewServer(upstream)
	defer up.Close()
	gw := httpx.NewEngine(log)
	if err := proxy(gw, "/api/v1/auth", up.URL); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/v1/auth/login", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	for _, name := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if got := resp.Header.Values(name); len(got) != 1 {
			t.Errorf("%s = %q, want one value", name, got)
		}
	}
}
