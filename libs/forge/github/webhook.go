package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// Headers GitHub sends with a delivery.
const (
	HeaderEvent       = "X-GitHub-Event"
	HeaderDelivery    = "X-GitHub-Delivery"
	HeaderSignature   = "X-Hub-Signature-256"
	signaturePrefix   = "sha256="
	headerSignature1  = "X-Hub-Signature" // legacy HMAC-SHA1, never accepted
	contentTypeForm   = "application/x-www-form-urlencoded"
	formPayloadField  = "payload"
	maxDeliveryKeyLen = 200
)

// Verifier checks and reads GitHub deliveries. The zero value is ready to use.
//
// Only X-Hub-Signature-256 is accepted: the legacy X-Hub-Signature (HMAC-SHA1) alone does
// not verify, so a delivery cannot be downgraded to the weaker MAC. GitHub signs no
// timestamp, so now is not used; redeliveries keep their X-GitHub-Delivery and are dropped
// by deduplication on Delivery.Key.
type Verifier struct{}

var _ forge.Verifier = Verifier{}

// Platform returns forge.GitHub.
func (Verifier) Platform() forge.Platform { return forge.GitHub }

// Verify checks that X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of the raw
// body under secret (for a form-encoded delivery, of the raw form body). An empty secret
// never verifies. Errors wrap forge.ErrSignature and carry the apperr code unauthorized.
func (Verifier) Verify(h http.Header, body []byte, secret string, _ time.Time) error {
	if secret == "" {
		return sigErr("github hook has no secret")
	}
	values := h.Values(HeaderSignature)
	if len(values) != 1 {
		if len(values) == 0 && h.Get(headerSignature1) != "" {
			return sigErr("github delivery has only the legacy sha1 signature; " + HeaderSignature + " is required")
		}
		return sigErr("github delivery needs exactly one " + HeaderSignature + " header")
	}
	hexMAC, ok := strings.CutPrefix(values[0], signaturePrefix)
	if !ok {
		return sigErr("github " + HeaderSignature + " is not sha256=<hex>")
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || len(got) != sha256.Size {
		return sigErr("github " + HeaderSignature + " is not sha256=<hex>")
	}
	if !hmac.Equal(got, mac(secret, body)) {
		return sigErr("github signature does not match")
	}
	return nil
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body under secret.
func Sign(secret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

func sigErr(msg string) error {
	return apperr.Wrap(forge.ErrSignature, apperr.CodeUnauthorized, "%s", msg)
}
