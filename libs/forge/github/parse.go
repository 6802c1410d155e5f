package github

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// GitHub's names for the events fabu reads.
const (
	EventPush = "push"
	EventPing = "ping"
)

// Parse reads a verified delivery. push becomes EventPush (branch and tag pushes, creations
// and deletions alike), ping EventPing, and every other event (create, delete, release, …)
// EventOther. A body that is not JSON, or a form body without a JSON payload field, is
// invalid, as is a push of a ref outside refs/heads/ and refs/tags/. Ref names are passed
// on byte for byte, even when not UTF-8: the caller validates them (fabu.dev/libs/gitref).
func (Verifier) Parse(h http.Header, body []byte) (forge.Delivery, error) {
	event := strings.TrimSpace(h.Get(HeaderEvent))
	if event == "" {
		return forge.Delivery{}, apperr.Invalid("github delivery has no %s header", HeaderEvent)
	}
	payload, err := jsonPayload(h, body)
	if err != nil {
		return forge.Delivery{}, err
	}
	d := forge.Delivery{Platform: forge.GitHub, Kind: forge.EventOther, Event: event, Key: deliveryKey(h, body), BodySigned: true}
	switch event {
	case EventPing:
		d.Kind = forge.EventPing
	case EventPush:
		p, err := parsePush(payload)
		if err != nil {
			return forge.Delivery{}, err
		}
		d.Kind, d.Push = forge.EventPush, p
	}
	return d, nil
}

// jsonPayload returns the delivery's JSON: the body itself, or the payload field of a
// form-encoded body. It is checked to be JSON whatever the event.
func jsonPayload(h http.Header, body []byte) ([]byte, error) {
	payload := body
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && mt == contentTypeForm {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, apperr.Invalid("github delivery: malformed form body")
		}
		if !form.Has(formPayloadField) {
			return nil, apperr.Invalid("github delivery: form body has no %s field", formPayloadField)
		}
		payload = []byte(form.Get(formPayloadField))
	}
	if !json.Valid(payload) {
		return nil, apperr.Invalid("github delivery: body is not valid JSON")
	}
	return payload, nil
}

// deliveryKey is X-GitHub-Delivery, which a redelivery keeps. Without a usable one the
// body's hash stands in: a redelivery carries the same body.
func deliveryKey(h http.Header, body []byte) string {
	if k := strings.TrimSpace(h.Get(HeaderDelivery)); k != "" && len(k) <= maxDeliveryKeyLen {
		return k
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushPayload is the part of a push event fabu reads.
type pushPayload struct {
	Ref        forge.RawString `json:"ref"`
	Before     string          `json:"before"`
	After      string          `json:"after"`
	Created    bool            `json:"created"`
	Deleted    bool            `json:"deleted"`
	Commits    []commitJSON    `json:"commits"`
	HeadCommit *commitJSON     `json:"head_commit"`
	Pusher     struct {
		Name string `json:"name"`
	} `json:"pusher"`
	Repository struct {
		FullName string `json:"full_name"`
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
	} `json:"repository"`
}

type commitJSON struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name string `json:"name"`
	} `json:"author"`
}

func parsePush(payload []byte) (*forge.Push, error) {
	var p pushPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, apperr.Wrap(err, apperr.CodeInvalid, "github push: malformed payload: %v", err)
	}
	ref := string(p.Ref)
	var kind forge.RefKind
	var name string
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		kind, name = forge.Branch, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		kind, name = forge.Tag, strings.TrimPrefix(ref, "refs/tags/")
	}
	if name == "" {
		return nil, apperr.Invalid("github push: ref %q is not a branch or a tag", clip(ref, 200))
	}
	if p.Repository.FullName == "" {
		return nil, apperr.Invalid("github push: no repository full_name")
	}
	push := &forge.Push{
		Platform:   forge.GitHub,
		Repository: p.Repository.FullName,
		Ref:        ref,
		Kind:       kind,
		Name:       name,
		Before:     p.Before,
		After:      p.After,
		Created:    p.Created || forge.ZeroSHA(p.Before),
		Deleted:    p.Deleted || forge.ZeroSHA(p.After),
		Pusher:     p.Pusher.Name,
	}
	for _, u := range []string{p.Repository.CloneURL, p.Repository.SSHURL} {
		if u != "" {
			push.CloneURLs = append(push.CloneURLs, u)
		}
	}
	for _, c := range p.Commits {
		push.Commits = append(push.Commits, c.commit())
	}
	if p.HeadCommit != nil {
		hc := p.HeadCommit.commit()
		push.HeadCommit = &hc
	}
	// TotalCommits stays 0 (unknown): GitHub sends no count, and commits is capped at 2048.
	return push, nil
}

func (c commitJSON) commit() forge.Commit {
	t, _ := time.Parse(time.RFC3339, c.Timestamp) // a malformed time is left zero
	return forge.Commit{SHA: c.ID, Message: c.Message, Author: c.Author.Name, Time: t, URL: c.URL}
}
