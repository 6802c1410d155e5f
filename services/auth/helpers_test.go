package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"fabu.dev/libs/httpx"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

// clock is a settable clock for lockout windows and token expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKeyring(t testing.TB) *secret.Keyring {
	k, err := secret.NewKeyring(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newService returns an auth service on db; clk may be nil (real time). mod changes the
// config before validation.
func newService(t testing.TB, db *store.DB, clk *clock, mod ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{Keys: testKeyring(t)}
	if clk != nil {
		cfg.Now = clk.Now
	}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const alicePassword = "alice's long password"

// addUser creates a user with password.
func addUser(t testing.TB, db *store.DB, id, name, role, password string) {
	t.Helper()
	h, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&User{ID: id, Username: name, PasswordHash: h, Role: role, CreatedAt: time.Now().UTC()}).Error; err != nil {
		t.Fatal(err)
	}
}

// api is the auth service behind a real HTTP server; it records every answer body so tests
// can scan them for secrets.
type api struct {
	t       *testing.T
	url     string
	mu      sync.Mutex
	answers []string
}

func serve(t *testing.T, s *Service) *api {
	engine := httpx.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Routes(engine)
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL}
}

// call sends body (JSON unless a string) with token as bearer (if not empty), decodes the
// answer into out and returns the status and headers.
func (a *api) call(method, path, token string, body, out any) (int, http.Header) {
	a.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, a.url+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.mu.Lock()
	a.answers = append(a.answers, method+" "+path+" → "+string(b))
	a.mu.Unlock()
	if out != nil && len(b) > 0 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func (a *api) login(user, password string) Tokens {
	a.t.Helper()
	var tok Tokens
	if st, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": password}, &tok); st != http.StatusOK {
		a.t.Fatalf("login %s: status %d", user, st)
	}
	return tok
}
