// Package oauthtest runs stand-ins for the remote sign-in platforms fabu's auth service
// talks to: a GitLab OpenID Connect provider (discovery, a JWKS of real RSA and EC keys,
// id_tokens signed with them, userinfo) and a GitHub OAuth app server (authorize, token,
// /user, /user/emails, /user/orgs under /api/v3 as on GitHub Enterprise). Both check what the
// real platforms check: the client's id, secret and registered redirect URI, single-use
// codes, and the PKCE code_verifier against the S256 challenge sent at authorization.
//
// They are HTTP servers on 127.0.0.1 (httptest). The user who "signs in" is set with
// SetUser; with AutoApprove the authorize endpoint redirects back at once, otherwise it shows
// a page with an Authorize button, as the platforms do, for browser tests.
package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// User is who signs in at a fake platform.
type User struct {
	Subject string // GitLab: sub; GitHub: the numeric id
	Login   string
	Name    string
	Email   string
	// EmailVerified: GitLab's email_verified claim; GitHub: whether the primary email is
	// verified.
	EmailVerified bool
	// Groups are GitLab group paths (userinfo "groups") or GitHub organization logins.
	Groups []string
	// OtherEmails are more GitHub emails, verified but not primary.
	OtherEmails []string
}

// grant is an issued authorization code.
type grant struct {
	user      User
	redirect  string
	challenge string
	nonce     string
	scope     string
	used      bool
	issued    time.Time
}

// server is what both fakes share: clients, the authorize page and codes.
type server struct {
	srv          *httptest.Server
	ClientID     string
	ClientSecret string
	RedirectURI  string // the registered callback; set it before signing in

	mu          sync.Mutex
	user        User
	autoApprove bool
	grants      map[string]*grant
	tokens      map[string]User // access token → user
	requests    []string        // every request URL, for tests that look for leaked tokens
}

func newServer(clientID, clientSecret string) *server {
	return &server{ClientID: clientID, ClientSecret: clientSecret, grants: map[string]*grant{}, tokens: map[string]User{}, autoApprove: true}
}

// URL is the fake platform's base URL.
func (s *server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *server) Close() { s.srv.Close() }

// SetUser sets who signs in next.
func (s *server) SetUser(u User) {
	s.mu.Lock()
	s.user = u
	s.mu.Unlock()
}

// SetAutoApprove chooses between redirecting back at once (true, the default) and showing
// an Authorize page.
func (s *server) SetAutoApprove(v bool) {
	s.mu.Lock()
	s.autoApprove = v
	s.mu.Unlock()
}

// Requests returns the URLs (path and query) of the requests the fake received.
func (s *server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *server) log(r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	s.mu.Unlock()
}

func random() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var approvePage = template.Must(template.New("approve").Parse(`<!doctype html>
<html><head><title>Authorize application</title></head><body>
<h1>Authorize {{.Client}}?</h1>
<p>Signed in as <b data-testid="fake-user">{{.Login}}</b></p>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<button type="submit" data-testid="fake-authorize">Authorize</button>
</form></body></html>`))

// authorize is the authorization endpoint: it checks the client and the redirect URI,
// requires an S256 PKCE challenge, and sends the browser back with a code (GET with
// auto-approve, or POST from the Authorize page).
func (s *server) authorize(w http.ResponseWriter, r *http.Request, action string) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form
	s.mu.Lock()
	user, auto, registered := s.user, s.autoApprove, s.RedirectURI
	s.mu.Unlock()
	if q.Get("client_id") != s.ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if registered == "" || q.Get("redirect_uri") != registered {
		http.Error(w, "redirect_uri does not match the registered callback URL", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" {
		http.Error(w, "need response_type=code, a state and an S256 code_challenge", http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodGet && !auto {
		fields := map[string]string{}
		for k := range q {
			fields[k] = q.Get(k)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = approvePage.Execute(w, map[string]any{"Client": s.ClientID, "Login": user.Login, "Action": action, "Fields": fields})
		return
	}
	code := random()
	s.mu.Lock()
	s.grants[code] = &grant{user: user, redirect: registered, challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		scope: q.Get("scope"), issued: time.Now()}
	s.mu.Unlock()
	back, _ := url.Parse(registered)
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// redeem checks a token request and spends its code.
func (s *server) redeem(r *http.Request) (*grant, string) {
	if err := r.ParseForm(); err != nil {
		return nil, "invalid_request"
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		return nil, "invalid_client"
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && gt != "authorization_code" {
		return nil, "unsupported_grant_type"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[r.PostForm.Get("code")]
	if !ok || g.used || time.Since(g.issued) > 10*time.Minute {
		return nil, "invalid_grant"
	}
	g.used = true
	if r.PostForm.Get("redirect_uri") != g.redirect {
		return nil, "invalid_grant"
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
		return nil, "invalid_grant" // PKCE: the verifier does not match the challenge
	}
	return g, ""
}

func (s *server) newAccessToken(u User) string {
	t := random()
	s.mu.Lock()
	s.tokens[t] = u
	s.mu.Unlock()
	return t
}

func (s *server) bearer(r *http.Request) (User, bool) {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		t, ok = strings.CutPrefix(r.Header.Get("Authorization"), "token ")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, known := s.tokens[t]
	return u, ok && known
}

// GitLab is a fake GitLab OpenID Connect provider.
type GitLab struct {
	*server
	RSAKey *rsa.PrivateKey
	ECKey  *ecdsa.PrivateKey

	// Now is the provider's clock for iat and exp; nil means time.Now.
	Now func() time.Time

	// Tamper, when set, makes the next id_tokens: it gets the claims the provider would sign
	// and returns the token to send (Sign, SignES256, SignWith and None build them).
	Tamper func(claims map[string]any) string
}

// NewGitLab starts a fake GitLab for an OAuth application with clientID and clientSecret.
func NewGitLab(clientID, clientSecret string) *GitLab {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	g := &GitLab{server: newServer(clientID, clientSecret), RSAKey: rk, ECKey: ek}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	return g
}

const (
	rsaKID = "gitlab-rsa-1"
	ecKID  = "gitlab-ec-1"
)

func (g *GitLab) serve(w http.ResponseWriter, r *http.Request) {
	g.log(r)
	base := g.URL()
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": base, "authorization_endpoint": base + "/oauth/authorize", "token_endpoint": base + "/oauth/token",
			"userinfo_endpoint": base + "/oauth/userinfo", "jwks_uri": base + "/oauth/discovery/keys",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
			"scopes_supported":                      []string{"openid", "profile", "email", "read_user"},
			"code_challenge_methods_supported":      []string{"plain", "S256"},
		})
	case "/oauth/discovery/keys":
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{
			{"kty": "RSA", "kid": rsaKID, "use": "sig", "alg": "RS256", "n": b64(g.RSAKey.N.Bytes()), "e": b64(big.NewInt(int64(g.RSAKey.E)).Bytes())},
			{"kty": "EC", "kid": ecKID, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(pad32(g.ECKey.X)), "y": b64(pad32(g.ECKey.Y))},
		}})
	case "/oauth/authorize":
		g.authorize(w, r, base+"/oauth/authorize")
	case "/oauth/token":
		gr, e := g.redeem(r)
		if e != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": e})
			return
		}
		now := time.Now()
		if g.Now != nil {
			now = g.Now()
		}
		claims := map[string]any{"iss": base, "sub": gr.user.Subject, "aud": g.ClientID, "exp": now.Add(2 * time.Minute).Unix(),
			"iat": now.Unix(), "auth_time": now.Unix(), "nonce": gr.nonce, "sub_legacy": "legacy-" + gr.user.Subject,
			"name": gr.user.Name, "nickname": gr.user.Login, "preferred_username": gr.user.Login,
			"email": gr.user.Email, "email_verified": gr.user.EmailVerified}
		var idToken string
		if g.Tamper != nil {
			idToken = g.Tamper(claims)
		} else {
			idToken = g.Sign(claims)
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": g.newAccessToken(gr.user), "token_type": "Bearer",
			"expires_in": 7200, "refresh_token": random(), "scope": gr.scope, "created_at": now.Unix(), "id_token": idToken})
	case "/oauth/userinfo":
		u, ok := g.bearer(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"sub": u.Subject, "name": u.Name, "nickname": u.Login,
			"preferred_username": u.Login, "email": u.Email, "email_verified": u.EmailVerified, "groups": u.Groups})
	default:
		http.NotFound(w, r)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(n *big.Int) []byte {
	b := make([]byte, 32)
	return n.FillBytes(b)
}

// Sign signs claims with the provider's RSA key (RS256), as GitLab does.
func (g *GitLab) Sign(claims map[string]any) string { return SignWith(g.RSAKey, rsaKID, claims) }

// SignES256 signs claims with the provider's EC key.
func (g *GitLab) SignES256(claims map[string]any) string { return SignWith(g.ECKey, ecKID, claims) }

// SignWith signs claims with key (RSA: RS256, ECDSA P-256: ES256) under kid.
func SignWith(key crypto.Signer, kid string, claims map[string]any) string {
	alg := "RS256"
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	input := encodeSegments(map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}, claims)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		sig = append(pad32(r), pad32(s)...)
	default:
		panic(fmt.Sprintf("oauthtest: cannot sign with %T", key))
	}
	return input + "." + b64(sig)
}

// None is claims as an unsigned JWT with alg "none".
func None(claims map[string]any) string {
	return encodeSegments(map[string]any{"alg": "none", "typ": "JWT"}, claims) + "."
}

func encodeSegments(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c)
}

// GitHub is a fake GitHub (Enterprise) with an OAuth app: /login/oauth/* and the REST API
// under /api/v3.
type GitHub struct {
	*server
}

// NewGitHub starts a fake GitHub for an OAuth app with clientID and clientSecret.
func NewGitHub(clientID, clientSecret string) *GitHub {
	g := &GitHub{server: newServer(clientID, clientSecret)}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	return g
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.log(r)
	switch r.URL.Path {
	case "/login/oauth/authorize":
		g.authorize(w, r, g.URL()+"/login/oauth/authorize")
		return
	case "/login/oauth/access_token":
		gr, e := g.redeem(r)
		// GitHub answers errors with 200 too, in the format asked for.
		answer := map[string]any{"error": e}
		if e == "" {
			answer = map[string]any{"access_token": g.newAccessToken(gr.user), "token_type": "bearer", "scope": gr.scope}
		}
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			writeJSON(w, http.StatusOK, answer)
			return
		}
		v := url.Values{}
		for k, x := range answer {
			v.Set(k, fmt.Sprint(x))
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = w.Write([]byte(v.Encode()))
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/api/v3")
	if !ok {
		http.NotFound(w, r)
		return
	}
	u, authed := g.bearer(r)
	if !authed {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	var id int64
	_, _ = fmt.Sscan(u.Subject, &id)
	switch p {
	case "/user":
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "login": u.Login, "name": u.Name, "type": "User",
			"email": nil, "node_id": "U_" + u.Subject})
	case "/user/emails":
		emails := []map[string]any{}
		if u.Email != "" {
			emails = append(emails, map[string]any{"email": u.Email, "primary": true, "verified": u.EmailVerified, "visibility": "private"})
		}
		for _, e := range u.OtherEmails {
			emails = append(emails, map[string]any{"email": e, "primary": false, "verified": true, "visibility": nil})
		}
		writeJSON(w, http.StatusOK, emails)
	case "/user/orgs":
		orgs := []map[string]any{}
		for i, o := range u.Groups {
			orgs = append(orgs, map[string]any{"login": o, "id": 1000 + i})
		}
		writeJSON(w, http.StatusOK, orgs)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}
