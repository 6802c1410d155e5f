package auth

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/httpx"
)

// A browser keeps its refresh token in an HttpOnly cookie that only the refresh route
// receives, so no script of the page (an injected one included) can read it: the SPA holds
// just the short-lived access token. SameSite=Strict keeps other sites' pages from sending
// the cookie, and the Origin check (sameOrigin) refuses pages of other origins on the same
// site. The CLI and API clients send the refresh token in the JSON body instead, as before.
const (
	refreshCookie     = "fabu_refresh"
	refreshCookiePath = "/api/v1/auth/refresh"
)

// fromBrowser tells a request a browser sent: browsers add Origin to every POST (and
// Sec-Fetch-Site to every request), and a page's script can remove neither. The CLI and API
// clients send neither.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// sameOrigin refuses requests that a browser sent from a page of another origin, with
// net/http's CrossOriginProtection (Sec-Fetch-Site, else Origin against Host). Requests
// without either header — not from a browser — pass. It guards the routes that set, read or
// clear the refresh cookie.
func (s *Service) sameOrigin(c *gin.Context) {
	if err := s.crossOrigin.Check(c.Request); err != nil {
		httpx.Fail(c, s.log, apperr.Forbidden("cross-origin request refused: only fabu's own pages may sign in or refresh a session"))
		return
	}
	c.Next()
}

// setRefreshCookie stores refresh in the browser for the refresh route, for as long as the
// refresh token lives; an empty refresh deletes the cookie.
func (s *Service) setRefreshCookie(c *gin.Context, refresh string) {
	maxAge := int(s.cfg.RefreshTTL / time.Second)
	if refresh == "" {
		maxAge = -1
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: refreshCookie, Value: refresh, Path: refreshCookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureCookie(c.Request), SameSite: http.SameSiteStrictMode})
}

// secureCookie tells whether the browser reached fabu over TLS: directly, through a proxy
// that says so, or as the public URL promises. A forged X-Forwarded-Proto can only make the
// cookie stricter.
func (s *Service) secureCookie(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") ||
		strings.HasPrefix(s.cfg.OAuth.PublicURL, "https://")
}

// sendTokens answers a sign-in with body, which holds t. The refresh token goes into the
// cookie; a browser's answer leaves it out of the body, so the page never sees it, while
// other clients find it there as before.
func (s *Service) sendTokens(c *gin.Context, t *Tokens, body any) {
	s.setRefreshCookie(c, t.RefreshToken)
	if fromBrowser(c.Request) {
		t.RefreshToken = ""
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, body)
}
