package github

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

// FuzzVerify checks Verify accepts exactly the true HMAC-SHA256 of the body under a
// non-empty secret, and always accepts what Sign produces.
func FuzzVerify(f *testing.F) {
	f.Add(v1Secret, []byte(v1Body), v1Sig)
	f.Add(v4Secret, []byte(v4Body), v4Sig)
	f.Add(v4Secret, []byte(v5Body), v5Sig1)
	f.Add(v2Secret, []byte("{}"), v3Sig)
	f.Add("", []byte(""), Sign("", nil))
	f.Add("s", []byte("b"), strings.ToUpper(Sign("s", []byte("b"))))
	f.Fuzz(func(t *testing.T, secret string, body []byte, sig string) {
		h := sigHeader(HeaderSignature, sig)
		err := Verifier{}.Verify(h, body, secret, time.Time{})
		if err == nil {
			got, decErr := hex.DecodeString(strings.TrimPrefix(sig, signaturePrefix))
			if secret == "" || !strings.HasPrefix(sig, signaturePrefix) || decErr != nil || !bytes.Equal(got, mac(secret, body)) {
				t.Fatalf("Verify accepted %q for secret %q and body %q", sig, secret, body)
			}
		}
		if secret != "" {
			if err := (Verifier{}).Verify(sigHeader(HeaderSignature, Sign(secret, body)), body, secret, time.Time{}); err != nil {
				t.Fatalf("Verify rejected Sign's own signature: %v", err)
			}
		}
	})
}

// FuzzParse checks Parse never panics and that a push it accepts is consistent.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"push.go-scm.json", "push_tag_delete.go-scm.json", "create_tag.go-scm.json", "release_published.go-scm.json"} {
		f.Add("push", "application/json", testenv.Fixture(f, "github/"+name))
	}
	f.Add("push", contentTypeForm, []byte(v5Body))
	f.Add("ping", contentTypeForm, []byte(v5Body))
	f.Add("push", "application/json", []byte("{\"ref\":\"refs/heads/\xff\",\"repository\":{\"full_name\":\"o/r\"},\"commits\":[{}],\"head_commit\":{}}"))
	f.Add("push", "application/json", []byte(`{"ref":"refs/tags/\u0000","repository":{"full_name":"o/r"}}`))
	f.Add("", "", []byte(""))
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		h := deliveryHeader(event, "k")
		h.Set("Content-Type", contentType)
		d, err := Verifier{}.Parse(h, body)
		if err != nil {
			return
		}
		if d.Platform != forge.GitHub || d.Key == "" {
			t.Fatalf("delivery %+v lacks platform or key", d)
		}
		if (d.Kind == forge.EventPush) != (d.Push != nil) {
			t.Fatalf("kind %s with push %v", d.Kind, d.Push)
		}
		if p := d.Push; p != nil {
			prefix := map[forge.RefKind]string{forge.Branch: "refs/heads/", forge.Tag: "refs/tags/"}[p.Kind]
			if prefix == "" || p.Name == "" || p.Ref != prefix+p.Name || p.Repository == "" {
				t.Fatalf("inconsistent push %+v", p)
			}
		}
	})
}
