package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// served starts an HTTP server with Handler over a store holding one artifact and returns
// the server, the signer and the artifact's bytes.
func served(t *testing.T) (*httptest.Server, *Signer, []byte) {
	t.Helper()
	d, _ := newDir(t)
	body := bytes.Repeat([]byte{0, 1, 2, 3, 250}, 20000)
	if _, _, err := d.Put(context.Background(), "01RUN.tar.gz", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	sg, err := NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(d, sg, nil))
	t.Cleanup(srv.Close)
	return srv, sg, body
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestSignedURL(t *testing.T) {
	srv, sg, body := served(t)
	good, err := sg.URL(srv.URL+"/", "01RUN.tar.gz", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(good, srv.URL+RoutePrefix+"01RUN.tar.gz?") {
		t.Fatalf("URL = %s", good)
	}
	if status, b := get(t, good); status != http.StatusOK || !bytes.Equal(b, body) {
		t.Fatalf("GET of the signed URL = %d with %d bytes, want 200 with the artifact", status, len(b))
	}

	u, _ := url.Parse(good)
	q := u.Query()
	exp, _ := strconv.ParseInt(q.Get("expires"), 10, 64)
	with := func(path string, set map[string]string) string {
		c := *u
		cq := c.Query()
		for k, v := range set {
			if v == "" {
				cq.Del(k)
			} else {
				cq.Set(k, v)
			}
		}
		c.Path, c.RawQuery = path, cq.Encode()
		return c.String()
	}
	sig := []byte(q.Get("sig"))
	flipped := append([]byte(nil), sig...)
	flipped[0] ^= 1
	expired := &Signer{keys: sg.keys, now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	old, _ := expired.URL(srv.URL, "01RUN.tar.gz", time.Hour)
	cases := map[string]string{
		"no signature":          srv.URL + RoutePrefix + "01RUN.tar.gz",
		"name changed":          with(RoutePrefix+"01RUM.tar.gz", nil),
		"expiry extended":       with(u.Path, map[string]string{"expires": strconv.FormatInt(exp+3600, 10)}),
		"expiry reformatted":    with(u.Path, map[string]string{"expires": "0" + q.Get("expires")}),
		"signature changed":     with(u.Path, map[string]string{"sig": string(flipped)}),
		"signature truncated":   with(u.Path, map[string]string{"sig": string(sig[:32])}),
		"signature missing":     with(u.Path, map[string]string{"sig": ""}),
		"expired":               old,
		"signed by another key": mustURL(t, mustSigner(t, bytes.Repeat([]byte("o"), 32)), srv.URL, "01RUN.tar.gz"),
	}
	for name, u := range cases {
		if status, b := get(t, u); status != http.StatusForbidden || bytes.Contains(b, body[:100]) {
			t.Errorf("%s: GET = %d, want 403", name, status)
		}
	}

	missing := mustURL(t, sg, srv.URL, "02NONE.tar.gz")
	if status, _ := get(t, missing); status != http.StatusNotFound {
		t.Errorf("signed URL of a missing artifact = %d, want 404", status)
	}
	for _, p := range []string{RoutePrefix + "..%2fmaster.key", RoutePrefix + ".hidden"} {
		if status, _ := get(t, srv.URL+p+"?"+u.RawQuery); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, status)
		}
	}
	resp, err := http.Post(good, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", resp.StatusCode)
	}
}

func TestSignerRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte("a"), 32), bytes.Repeat([]byte("b"), 32)
	before := mustSigner(t, oldKey)
	after := mustSigner(t, newKey, oldKey)
	u, _ := url.Parse(mustURL(t, before, "http://b", "x.tar.gz"))
	if err := after.Verify("x.tar.gz", u.Query()); err != nil {
		t.Errorf("a URL signed before rotation does not verify after it: %v", err)
	}
	if err := mustSigner(t, newKey).Verify("x.tar.gz", u.Query()); err == nil {
		t.Error("a URL signed with a retired key verifies")
	}
	if _, err := NewSigner(make([]byte, 16)); err == nil {
		t.Error("NewSigner accepted a 16-byte key")
	}
	if _, err := before.URL("ftp://b", "x.tar.gz", time.Hour); err == nil {
		t.Error("URL accepted an ftp base")
	}
}

func TestFetch(t *testing.T) {
	srv, sg, body := served(t)
	var buf bytes.Buffer
	sum, n, err := Fetch(context.Background(), http.DefaultClient, mustURL(t, sg, srv.URL, "01RUN.tar.gz"), &buf)
	want := sha256.Sum256(body)
	if err != nil || n != int64(len(body)) || sum != hex.EncodeToString(want[:]) || !bytes.Equal(buf.Bytes(), body) {
		t.Fatalf("Fetch = %s, %d, %v", sum, n, err)
	}
	// Errors name the place but never carry the signature.
	bad := mustURL(t, sg, srv.URL, "02NONE.tar.gz")
	_, _, err = Fetch(context.Background(), http.DefaultClient, bad, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "sig=") {
		t.Errorf("Fetch of a missing artifact = %v", err)
	}
	truncating := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
	}))
	defer truncating.Close()
	if _, _, err := Fetch(context.Background(), http.DefaultClient, truncating.URL+"/x?sig=s", io.Discard); err == nil {
		t.Error("Fetch of a truncated body succeeded")
	}
	if _, _, err := Fetch(context.Background(), http.DefaultClient, "file:///etc/passwd", io.Discard); err == nil {
		t.Error("Fetch accepted a file URL")
	}
}

func mustSigner(t *testing.T, keys ...[]byte) *Signer {
	t.Helper()
	s, err := NewSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustURL(t *testing.T, s *Signer, base, name string) string {
	t.Helper()
	u, err := s.URL(base, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
