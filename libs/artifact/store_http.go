package artifact

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// RoutePrefix is the path under which a builder serves its store: GET
// <RoutePrefix><name>?expires=<unix seconds>&sig=<hex HMAC>.
const RoutePrefix = "/internal/artifacts/"

// SigningPurpose is the purpose under which the URL signing key is derived from the master
// keys (secret.Keyring.Derive), so the key is the same in every builder process and after
// a restart, and is used for nothing else.
const SigningPurpose = "artifact-url/v1"

// Signer signs and verifies artifact download URLs: HMAC-SHA256 over the artifact name and
// the expiry time. It signs with its first key and accepts any of them, so master keys
// rotate without breaking URLs already handed out.
type Signer struct {
	keys [][]byte
	now  func() time.Time
}

// NewSigner returns a signer with keys, newest first; each must be at least 32 bytes.
func NewSigner(keys ...[]byte) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("artifact signer: no key")
	}
	for i, k := range keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("artifact signer: key %d has %d bytes, want at least 32", i+1, len(k))
		}
	}
	return &Signer{keys: keys, now: time.Now}, nil
}

func mac(key []byte, name string, expires int64) []byte {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "fabu artifact url v1\x00%s\x00%d", name, expires)
	return h.Sum(nil)
}

// URL returns the signed URL of artifact name under base (the builder's base URL, e.g.
// http://builder:8080), valid for ttl.
func (s *Signer) URL(base, name string, ttl time.Duration) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("artifact base URL %q is not an http(s) URL", base)
	}
	exp := s.now().Add(ttl).Unix()
	q := url.Values{"expires": {strconv.FormatInt(exp, 10)}, "sig": {hex.EncodeToString(mac(s.keys[0], name, exp))}}
	return strings.TrimRight(base, "/") + RoutePrefix + name + "?" + q.Encode(), nil
}

// ErrDenied is the error of a URL whose signature is missing, wrong or expired.
var ErrDenied = apperr.Forbidden("artifact URL is not signed, tampered with or expired")

// Verify checks the expiry and signature in q for artifact name.
func (s *Signer) Verify(name string, q url.Values) error {
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || q.Get("expires") != strconv.FormatInt(exp, 10) {
		return ErrDenied
	}
	sig, err := hex.DecodeString(q.Get("sig"))
	if err != nil || len(sig) != sha256.Size {
		return ErrDenied
	}
	ok := false
	for _, k := range s.keys {
		ok = hmac.Equal(sig, mac(k, name, exp)) || ok
	}
	if !ok || s.now().Unix() > exp {
		return ErrDenied
	}
	return nil
}

// Handler serves GET <RoutePrefix><name> from st to requests whose URL sg signed. There is
// no unsigned access: a bad or expired signature is 403, before the store is looked at.
func Handler(st Store, sg *Signer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, RoutePrefix)
		if !ok || CheckName(name) != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if sg == nil || sg.Verify(name, r.URL.Query()) != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		f, size, err := st.Open(r.Context(), name)
		if err != nil {
			if code, _ := apperr.Public(err); code == apperr.CodeNotFound {
				http.Error(w, "no such artifact", http.StatusNotFound)
				return
			}
			if log != nil {
				log.Error("open artifact", "name", name, "err", err)
			}
			http.Error(w, "cannot read the artifact", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Cache-Control", "no-store")
		if n, err := io.Copy(w, f); err != nil && log != nil {
			log.Warn("send artifact", "name", name, "sent", n, "of", size, "err", err)
		}
	})
}

// Fetch downloads the artifact at the signed URL rawURL into w, hashing as it goes, and
// returns the hex SHA-256 and the byte count. A status other than 200, a body shorter or
// longer than its Content-Length, or a transport error is an error; the caller compares
// the hash with the one it expects before using what was written.
func Fetch(ctx context.Context, client *http.Client, rawURL string, w io.Writer) (string, int64, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", 0, fmt.Errorf("artifact URL is not an http(s) URL")
	}
	where := u.Scheme + "://" + u.Host + u.Path // never the signature
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", 0, fmt.Errorf("fetch %s: %w", where, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, signature included
		}
		return "", 0, fmt.Errorf("fetch %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", 0, fmt.Errorf("fetch %s: %s: %s", where, resp.Status, strings.TrimSpace(string(msg)))
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("fetch %s: after %d bytes: %w", where, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return "", n, fmt.Errorf("fetch %s: got %d bytes, want %d", where, n, resp.ContentLength)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
