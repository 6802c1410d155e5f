package gitee

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// pushPayload is the part of a Push Hook or Tag Push Hook body fabu reads. Gitee sends null
// for commits on a creation and for counts it does not know; null leaves the zero value.
type pushPayload struct {
	Ref               forge.RawString `json:"ref"`
	Before            string          `json:"before"`
	After             string          `json:"after"`
	Created           bool            `json:"created"`
	Deleted           bool            `json:"deleted"`
	Commits           []pushCommit    `json:"commits"`
	HeadCommit        *pushCommit     `json:"head_commit"`
	TotalCommitsCount int             `json:"total_commits_count"`
	Repository        *pushRepo       `json:"repository"`
	Project           *pushRepo       `json:"project"`
	Pusher            *pushUser       `json:"pusher"`
	UserName          string          `json:"user_name"`
}

type pushRepo struct {
	PathWithNamespace string `json:"path_with_namespace"`
	FullName          string `json:"full_name"`
	GitHTTPURL        string `json:"git_http_url"`
	CloneURL          string `json:"clone_url"`
	GitSSHURL         string `json:"git_ssh_url"`
	SSHURL            string `json:"ssh_url"`
}

type pushUser struct {
	Username string `json:"username"`
	UserName string `json:"user_name"`
	Login    string `json:"login"`
	Name     string `json:"name"`
}

type pushCommit struct {
	ID        string    `json:"id"`
	Message   string    `json:"message"`
	Timestamp string    `json:"timestamp"`
	URL       string    `json:"url"`
	Author    *pushUser `json:"author"`
}

func (c pushCommit) commit() forge.Commit {
	out := forge.Commit{SHA: c.ID, Message: c.Message, Time: parseTime(c.Timestamp), URL: c.URL}
	if c.Author != nil {
		out.Author = c.Author.Name
	}
	return out
}

// Parse reads a verified delivery. Push Hook and Tag Push Hook become EventPush; a test
// delivery (X-Gitee-Ping: true, whatever its event) becomes EventPing; every other event
// is EventOther. Refs are kept as sent, bytes and all, apart from the refs/heads/ or
// refs/tags/ prefix they must carry: callers validate names with fabu.dev/libs/gitref.
func (v Verifier) Parse(h http.Header, body []byte) (forge.Delivery, error) {
	event := get(h, HeaderEvent)
	if event == "" {
		event = get(h, headerLegacy)
	}
	d := forge.Delivery{Platform: forge.Gitee, Event: event, Key: v.key(h, body), Kind: forge.EventOther, BodyUnsigned: true}
	switch {
	case strings.EqualFold(get(h, HeaderPing), "true"):
		d.Kind = forge.EventPing
		return d, nil
	case event == "":
		return forge.Delivery{}, apperr.Invalid("gitee delivery has no %s header", HeaderEvent)
	case event != EventPushHook && event != EventTagPushHook:
		return d, nil
	}
	push, err := parsePush(body)
	if err != nil {
		return forge.Delivery{}, err
	}
	d.Kind, d.Push = forge.EventPush, push
	return d, nil
}

// key is the deduplication key: timestamp and token, which Gitee keeps on a redelivery
// and which a replayed, re-bodied copy cannot change; the token is taken in the form Verify
// compares, so an encoded copy has the same key. In password mode the token is the
// secret itself, so a fingerprint of it stands in: keys are stored and logged.
func (v Verifier) key(h http.Header, body []byte) string {
	ts, token := get(h, HeaderTimestamp), get(h, HeaderToken)
	if ts == "" && token == "" {
		sum := sha256.Sum256(body)
		return "body:" + hex.EncodeToString(sum[:])
	}
	if v.Mode == ModeSignature {
		token = unescapedToken(token) // the form Verify compares (signatureOK)
	} else {
		sum := sha256.Sum256([]byte("fabu gitee delivery key\n" + token))
		token = "pw-" + hex.EncodeToString(sum[:8])
	}
	return ts + ":" + token
}

func parsePush(body []byte) (*forge.Push, error) {
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, apperr.Invalid("gitee push payload is not valid JSON: %v", err)
	}
	ref := string(p.Ref)
	push := &forge.Push{
		Platform: forge.Gitee, Ref: ref, Before: p.Before, After: p.After,
		Created:      p.Created || forge.ZeroSHA(p.Before),
		Deleted:      p.Deleted || forge.ZeroSHA(p.After),
		TotalCommits: p.TotalCommitsCount,
	}
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		push.Kind, push.Name = forge.Branch, strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		push.Kind, push.Name = forge.Tag, strings.TrimPrefix(ref, "refs/tags/")
	}
	if push.Name == "" {
		return nil, apperr.Invalid("gitee push ref %q is not refs/heads/<name> or refs/tags/<name>", clip(ref, 200))
	}
	r := p.Repository
	if r == nil {
		r = p.Project
	}
	if r != nil {
		push.Repository = r.PathWithNamespace
		if push.Repository == "" {
			push.Repository = r.FullName
		}
		push.CloneURLs = cloneURLs(r.GitHTTPURL, r.CloneURL, r.GitSSHURL, r.SSHURL)
	}
	if push.Repository == "" {
		return nil, apperr.Invalid("gitee push payload names no repository")
	}
	for _, c := range p.Commits {
		push.Commits = append(push.Commits, c.commit())
	}
	if p.HeadCommit != nil && p.HeadCommit.ID != "" {
		hc := p.HeadCommit.commit()
		push.HeadCommit = &hc
	}
	switch u := p.Pusher; {
	case u != nil && u.Username != "":
		push.Pusher = u.Username
	case u != nil && u.UserName != "":
		push.Pusher = u.UserName
	case u != nil && u.Login != "":
		push.Pusher = u.Login
	case u != nil && u.Name != "":
		push.Pusher = u.Name
	default:
		push.Pusher = p.UserName
	}
	return push, nil
}

// cloneURLs keeps the distinct non-empty URLs, HTTP first.
func cloneURLs(urls ...string) []string {
	var out []string
	for _, u := range urls {
		dup := u == ""
		for _, o := range out {
			dup = dup || o == u
		}
		if !dup {
			out = append(out, u)
		}
	}
	return out
}
