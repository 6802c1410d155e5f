package gitee

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// Mode is how a Gitee hook proves it knows the secret. It is a property of the hook as
// installed, so the receiver must know it: accepting either mode would let a leaked
// signature header pass as a password, and a leaked password never expires.
type Mode int

// The two modes. Their values are fabu's, not Gitee's encryption_type numbers (where 0 is
// password and 1 signature): the zero Mode is the safer signature mode.
const (
	// ModeSignature: X-Gitee-Token is Base64(HMAC-SHA256(secret, timestamp+"\n"+secret)),
	// valid for MaxSkew around X-Gitee-Timestamp. CreateHook installs hooks in this mode.
	ModeSignature Mode = iota
	// ModePassword: X-Gitee-Token is the secret itself.
	ModePassword
)

// MaxSkew is how far a signed timestamp may be from the receiver's clock, either way, as
// Gitee's documentation prescribes.
const MaxSkew = time.Hour

// Headers Gitee sends with a delivery.
const (
	HeaderToken     = "X-Gitee-Token"
	HeaderTimestamp = "X-Gitee-Timestamp"
	HeaderEvent     = "X-Gitee-Event"
	HeaderPing      = "X-Gitee-Ping"
	headerLegacy    = "X-Git-Oschina-Event"
)

// Gitee's event names for pushes.
const (
	EventPushHook    = "Push Hook"
	EventTagPushHook = "Tag Push Hook"
)

// Verifier checks and reads Gitee deliveries. The zero value checks signature mode.
//
// Gitee signs only the timestamp, never the body: a captured delivery's headers stay valid
// for MaxSkew with any body. The delivery Key is built from the timestamp and the token so
// that such a replay has the key of the original and is dropped by deduplication.
type Verifier struct {
	Mode Mode
}

var (
	_ forge.ModeVerifier   = Verifier{}
	_ forge.HeaderVerifier = Verifier{}
)

// Mode names as projects store them (projects.webhook_mode).
const (
	ModeNameSignature = "signature"
	ModeNamePassword  = "password"
)

// WithMode returns the Verifier for mode: "" or "signature" for ModeSignature, "password"
// for ModePassword.
func (Verifier) WithMode(mode string) (forge.Verifier, error) {
	switch mode {
	case "", ModeNameSignature:
		return Verifier{Mode: ModeSignature}, nil
	case ModeNamePassword:
		return Verifier{Mode: ModePassword}, nil
	}
	return nil, apperr.Invalid("gitee webhook mode %q is not signature or password", mode)
}

// Platform returns forge.Gitee.
func (Verifier) Platform() forge.Platform { return forge.Gitee }

// Verify checks X-Gitee-Token against secret in the Verifier's mode. The body is not
// covered by Gitee's proof and is not read. Errors wrap forge.ErrSignature or forge.ErrStale
// and carry the apperr code unauthorized.
func (v Verifier) Verify(h http.Header, body []byte, secret string, now time.Time) error {
	token := get(h, HeaderToken)
	if secret == "" || token == "" {
		return sigErr("gitee delivery has no token or the hook no secret")
	}
	switch v.Mode {
	case ModePassword:
		// Hashing first keeps the comparison constant-time in the length, too.
		a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
		if !hmac.Equal(a[:], b[:]) {
			return sigErr("gitee password does not match")
		}
		return nil
	case ModeSignature:
		ts := get(h, HeaderTimestamp)
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || ms < 0 {
			return sigErr("gitee delivery has no valid " + HeaderTimestamp)
		}
		if !signatureOK(token, Sign(secret, ts)) {
			return sigErr("gitee signature does not match")
		}
		if skew := now.Sub(time.UnixMilli(ms)); skew > MaxSkew || skew < -MaxSkew {
			return apperr.Wrap(forge.ErrStale, apperr.CodeUnauthorized, "gitee delivery timestamp %s is %s from now", ts, skew.Round(time.Second))
		}
		return nil
	default:
		return sigErr("gitee verifier has an unknown mode")
	}
}

// VerifyHeaders is Verify: Gitee's proof covers the headers only.
func (v Verifier) VerifyHeaders(h http.Header, secret string, now time.Time) error {
	return v.Verify(h, nil, secret, now)
}

// Sign returns the X-Gitee-Token Gitee sends in signature mode for timestamp (the
// X-Gitee-Timestamp value, milliseconds, as text).
func Sign(secret, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signatureOK accepts the token as plain Base64 (what Gitee sends) or URL-encoded (what its
// documentation describes). Both comparisons always run, in constant time.
func signatureOK(token, want string) bool {
	ok := hmac.Equal([]byte(token), []byte(want))
	if dec := unescapedToken(token); dec != token {
		ok = hmac.Equal([]byte(dec), []byte(want)) || ok
	}
	return ok
}

// unescapedToken is token with its percent-encoding undone, or token itself when it has
// none or is not valid percent-encoding. A signature-mode token that verifies is either the
// signature or one of its encodings, so this is the one form the delivery key must use:
// keyed on the raw header, one delivery would have as many keys as encodings, each a fresh
// replay with another body.
func unescapedToken(token string) string {
	if dec, err := url.PathUnescape(token); err == nil {
		return dec
	}
	return token
}

func sigErr(msg string) error {
	return apperr.Wrap(forge.ErrSignature, apperr.CodeUnauthorized, "%s", msg)
}

// get returns a header's first value without surrounding space.
func get(h http.Header, key string) string { return strings.TrimSpace(h.Get(key)) }
