package httpx

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// APIPolicy is the Content-Security-Policy of every response that is not a page of the web
// app: a JSON answer opened as a document may load nothing, run nothing and be framed by
// no one.
const APIPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders are set on every response. A service that serves pages replaces
// Content-Security-Policy with the pages' own policy.
var securityHeaders = [...]struct{ name, value string }{
	{"Content-Security-Policy", APIPolicy},
	// X-Frame-Options does what frame-ancestors 'none' does, for browsers before CSP 2.
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	// No URL of fabu (run pages, deploy links) leaves in a Referer for another site.
	{"Referrer-Policy", "same-origin"},
}

// SecureHeaders sets the security headers on the response before the handler runs, so that
// errors, redirects and 404s carry them too. NewEngine installs it.
func SecureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	for _, sh := range securityHeaders {
		h.Set(sh.name, sh.value)
	}
	c.Next()
}

// StripSecurityHeaders removes the security headers from h: a reverse proxy in front of
// another fabu service drops that service's copies, so its own are not sent twice.
func StripSecurityHeaders(h http.Header) {
	for _, sh := range securityHeaders {
		h.Del(sh.name)
	}
}
