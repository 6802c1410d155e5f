package gitlab

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
)

// Delivery headers GitLab sends.
const (
	HeaderEvent          = "X-Gitlab-Event"
	HeaderToken          = "X-Gitlab-Token"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderEventUUID      = "X-Gitlab-Event-UUID"
)

// Event names fabu acts on, as X-Gitlab-Event carries them.
const (
	EventPushHook    = "Push Hook"
	EventTagPushHook = "Tag Push Hook"
)

// Verifier checks and reads GitLab webhook deliveries. Its zero value is ready to use.
type Verifier struct{}

var _ forge.HeaderVerifier = Verifier{}

// Platform returns forge.GitLab.
func (Verifier) Platform() forge.Platform { return forge.GitLab }

// Verify accepts a delivery whose X-Gitlab-Token equals secret. GitLab sends the token
// verbatim (no HMAC, no timestamp), so the body and now play no part. The comparison takes
// the same time wherever the first difference is; an empty secret or header never verifies.
func (Verifier) Verify(h http.Header, _ []byte, secret string, _ time.Time) error {
	got := h.Values(HeaderToken)
	// Two token headers are a forged or broken request: which one would GitLab have sent?
	if secret == "" || len(got) != 1 || got[0] == "" {
		return forge.ErrSignature
	}
	// Exact bytes only. GitLab strips line breaks from the token it sends, so a secret
	// holding one never verifies; CreateHook refuses such secrets.
	if subtle.ConstantTimeCompare([]byte(got[0]), []byte(secret)) != 1 {
		return forge.ErrSignature
	}
	return nil
}

// VerifyHeaders is Verify: the token is a header, the body plays no part.
func (v Verifier) VerifyHeaders(h http.Header, secret string, now time.Time) error {
	return v.Verify(h, nil, secret, now)
}

// Parse reads a verified delivery. Push Hook and Tag Push Hook become EventPush; every other
// event (merge requests, pipelines, jobs, releases, system hooks…) is EventOther, unread.
//
// Key is the Idempotency-Key header (GitLab 17.4+), which stays the same across automatic
// retries, "Resend Request" and the resend API. Older GitLab has no such header; then Key
// is "event-uuid:" + X-Gitlab-Event-UUID, which GitLab keeps for the event it fires hooks
// for (it is shared only by hooks that an earlier hook's receiver triggered by passing it
// on, which fabu never does). X-Gitlab-Webhook-UUID is never used: it is new on every
// attempt, so it would defeat deduplication. With neither header, Key is empty and the
// delivery cannot be deduplicated; no key is made up from the body, because pushing
// A→B, B→A, A→B produces the same body twice for two different pushes.
func (Verifier) Parse(h http.Header, body []byte) (forge.Delivery, error) {
	event := h.Get(HeaderEvent)
	d := forge.Delivery{Platform: forge.GitLab, Kind: forge.EventOther, Event: event, Key: deliveryKey(h)}
	if event != EventPushHook && event != EventTagPushHook {
		return d, nil
	}
	var p pushHook
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return forge.Delivery{}, apperr.Wrap(err, apperr.CodeInvalid, "gitlab: %s body is not a push payload", event)
	}
	if dec.More() {
		return forge.Delivery{}, apperr.Invalid("gitlab: %s body has data after the JSON object", event)
	}
	push, err := p.normalize(event)
	if err != nil {
		return forge.Delivery{}, err
	}
	d.Kind, d.Push = forge.EventPush, push
	return d, nil
}

func deliveryKey(h http.Header) string {
	if k := h.Get(HeaderIdempotencyKey); k != "" {
		return k
	}
	if k := h.Get(HeaderEventUUID); k != "" {
		return "event-uuid:" + k
	}
	return ""
}

// pushHook is the part of a Push Hook or Tag Push Hook payload fabu reads.
type pushHook struct {
	ObjectKind        string          `json:"object_kind"`
	Before            string          `json:"before"`
	After             string          `json:"after"`
	Ref               forge.RawString `json:"ref"`
	UserUsername      string          `json:"user_username"`
	UserName          string          `json:"user_name"`
	TotalCommitsCount *int            `json:"total_commits_count"`
	Project           hookProject     `json:"project"`
	Repository        hookRepo        `json:"repository"`
	Commits           []hookCommit    `json:"commits"`
}

type hookProject struct {
	PathWithNamespace string `json:"path_with_namespace"`
	GitHTTPURL        string `json:"git_http_url"`
	GitSSHURL         string `json:"git_ssh_url"`
}

type hookRepo struct {
	GitHTTPURL string `json:"git_http_url"`
	GitSSHURL  string `json:"git_ssh_url"`
}

type hookCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name string `json:"name"`
	} `json:"author"`
}

// normalize checks the payload against its event and turns it into a forge.Push. The ref is
// kept byte for byte after its prefix: callers validate names with fabu.dev/libs/gitref.
func (p *pushHook) normalize(event string) (*forge.Push, error) {
	wantKind, prefix, kind := "push", "refs/heads/", forge.Branch
	if event == EventTagPushHook {
		wantKind, prefix, kind = "tag_push", "refs/tags/", forge.Tag
	}
	if p.ObjectKind != wantKind {
		return nil, apperr.Invalid("gitlab: %s carries object_kind %q, want %q", event, p.ObjectKind, wantKind)
	}
	ref := string(p.Ref)
	name, ok := strings.CutPrefix(ref, prefix)
	if !ok || name == "" {
		return nil, apperr.Invalid("gitlab: %s ref %q is not under %s", event, ref, prefix)
	}
	if p.Project.PathWithNamespace == "" {
		return nil, apperr.Invalid("gitlab: %s has no project.path_with_namespace", event)
	}
	out := &forge.Push{
		Platform:   forge.GitLab,
		Repository: p.Project.PathWithNamespace,
		CloneURLs:  cloneURLs(p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Repository.GitHTTPURL, p.Repository.GitSSHURL),
		Ref:        ref,
		Kind:       kind,
		Name:       name,
		Before:     p.Before,
		After:      p.After,
		Created:    forge.ZeroSHA(p.Before),
		Deleted:    forge.ZeroSHA(p.After),
		Pusher:     p.UserUsername,
	}
	if out.Pusher == "" {
		out.Pusher = p.UserName
	}
	out.Commits = make([]forge.Commit, 0, len(p.Commits))
	for _, c := range p.Commits {
		fc := forge.Commit{SHA: c.ID, Message: c.Message, Author: c.Author.Name, URL: c.URL}
		// A timestamp that does not parse is left zero: the commit list is informative,
		// and one odd field must not make the whole push unreadable.
		if t, err := time.Parse(time.RFC3339, c.Timestamp); err == nil {
			fc.Time = t
		}
		out.Commits = append(out.Commits, fc)
	}
	for i := range out.Commits {
		if out.After != "" && out.Commits[i].SHA == out.After {
			hc := out.Commits[i]
			out.HeadCommit = &hc
		}
	}
	// GitLab sends at most the newest 20 commits; total_commits_count is the real number.
	out.TotalCommits = len(out.Commits)
	if p.TotalCommitsCount != nil && *p.TotalCommitsCount >= 0 {
		out.TotalCommits = *p.TotalCommitsCount
	}
	return out, nil
}

// cloneURLs returns the distinct non-empty URLs, HTTP first.
func cloneURLs(urls ...string) []string {
	var out []string
	for _, u := range urls {
		if u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}
