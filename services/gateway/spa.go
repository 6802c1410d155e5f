package gateway

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
)

// spaPolicy is the Content-Security-Policy of the web app's pages and files (every other
// answer keeps httpx.APIPolicy). Scripts come only from fabu's own files: no inline script,
// no eval. Styles allow 'unsafe-inline' because the terminal's xterm.js writes its colours and
// cell sizes into <style> elements it creates (without it Chromium refuses them and the
// terminal draws wrongly); CSS runs no code. connect-src 'self' admits the same-origin WebSockets of the live log and
// the terminal. The favicon is a data: URL.
const spaPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// spa serves the single-page app: files of the build as they are, and index.html for any
// other GET outside the API, so bookmarked client routes work. Unknown API paths get a JSON
// 404.
func (s *Service) spa(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/hooks/") ||
		(c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
		httpx.Fail(c, s.log, apperr.NotFound("no route %s %s", c.Request.Method, p))
		return
	}
	c.Header("Content-Security-Policy", spaPolicy)
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		name = "index.html"
	}
	if fi, err := fs.Stat(s.cfg.Web, name); err != nil || fi.IsDir() {
		name = "index.html"
	}
	if name == "index.html" {
		// Served as bytes: http.FileServer would redirect /index.html back to /, forever.
		index, err := fs.ReadFile(s.cfg.Web, name)
		if err != nil {
			c.String(http.StatusNotFound, "the web UI is not built into this binary; run `make web` and rebuild")
			return
		}
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", index)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	}
	c.FileFromFS(name, http.FS(s.cfg.Web))
}
