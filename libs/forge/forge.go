// Package forge puts the git platforms fabu connects to — GitLab, GitHub and Gitee, cloud
// or self-hosted — behind one interface: an API client (projects, refs, commits, hooks) and
// a webhook reader (verify a delivery, then parse it into one normalized event). Each
// platform is one subpackage; adding Gitea or Forgejo is one more.
package forge

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Platform names a kind of git platform.
type Platform string

// The supported platforms.
const (
	GitLab Platform = "gitlab"
	GitHub Platform = "github"
	Gitee  Platform = "gitee"
)

// Connection is how fabu reaches one platform installation: its base URL (the web root,
// e.g. https://gitlab.example.com or https://github.com) and an access token.
type Connection struct {
	Platform Platform
	BaseURL  string
	Token    string
}

// Project is a repository as a platform lists it.
type Project struct {
	ID            string // the platform's own ID, as text
	Path          string // full path with namespace: group/sub/name or owner/name
	Name          string
	Namespace     string
	Description   string
	DefaultBranch string
	HTTPURL       string // clone URLs
	SSHURL        string
	WebURL        string
	Archived      bool
	UpdatedAt     time.Time
}

// RefKind tells branches from tags.
type RefKind string

// Kinds of refs.
const (
	Branch RefKind = "branch"
	Tag    RefKind = "tag"
)

// Ref is a branch or a tag and the commit it points at.
type Ref struct {
	Kind      RefKind
	Name      string
	Commit    string
	Protected bool
}

// Commit is one commit.
type Commit struct {
	SHA     string
	Message string
	Author  string
	Time    time.Time
	URL     string
}

// ListOptions pages and filters a list call. Page starts at 1; PerPage is at most 100.
type ListOptions struct {
	Page    int
	PerPage int
	Search  string // branch/tag name or project path filter, where the platform supports it
	Ref     string // commits: the branch, tag or commit to list from
}

// PageInfo says where a list call's page sits: NextPage is 0 on the last page.
type PageInfo struct {
	NextPage int
}

// HookSpec is the webhook fabu installs on a project.
type HookSpec struct {
	URL    string
	Secret string // GitLab token, GitHub HMAC secret, Gitee signature secret
}

// Hook is a webhook installed on a project, with what the platform tells of its latest
// delivery: deliveries that never reached fabu (a firewall, DNS, a proxy answering for it)
// show only there.
type Hook struct {
	ID     string
	URL    string
	Events []string
	Active bool // false when the platform stopped delivering (GitHub inactive, GitLab disabled after failures)
	// LastStatus is the HTTP status of the latest delivery's answer as the platform saw it
	// (0: not told, or no answer at all); LastResult is the platform's word on it (GitHub's
	// status and message, Gitee's result text), clipped; DisabledUntil is when GitLab
	// resumes a temporarily disabled hook.
	LastStatus    int
	LastResult    string
	DisabledUntil *time.Time
}

// Client is a platform's API as fabu uses it. Every method honours ctx; errors are apperr
// errors (not_found, unauthorized, unavailable for rate limits and outages, invalid).
type Client interface {
	Platform() Platform
	Projects(ctx context.Context, opt ListOptions) ([]Project, PageInfo, error)
	Project(ctx context.Context, path string) (Project, error)
	Branches(ctx context.Context, project string, opt ListOptions) ([]Ref, PageInfo, error)
	Tags(ctx context.Context, project string, opt ListOptions) ([]Ref, PageInfo, error)
	Commits(ctx context.Context, project string, opt ListOptions) ([]Commit, PageInfo, error)
	Hooks(ctx context.Context, project string) ([]Hook, error)
	CreateHook(ctx context.Context, project string, spec HookSpec) (Hook, error)
	DeleteHook(ctx context.Context, project, hookID string) error
}

// EventKind is what a delivery announces.
type EventKind string

// Kinds of deliveries fabu understands; everything else is EventOther.
const (
	EventPush  EventKind = "push" // a branch or tag push, creation or deletion
	EventPing  EventKind = "ping" // a test delivery
	EventOther EventKind = "other"
)

// Push is one push normalized across platforms. Commits holds what the platform sent:
// often only the newest 20 (GitLab) or none on a creation; TotalCommits says how many
// there were when the platform tells.
type Push struct {
	Platform     Platform
	Repository   string // full path with namespace
	CloneURLs    []string
	Ref          string // full ref: refs/heads/x or refs/tags/v1
	Kind         RefKind
	Name         string // the branch or tag name
	Before       string
	After        string
	Created      bool
	Deleted      bool // never deployed
	Commits      []Commit
	HeadCommit   *Commit
	TotalCommits int
	Pusher       string
}

// Delivery is one verified webhook delivery.
type Delivery struct {
	Platform Platform
	Kind     EventKind
	Event    string // the platform's own event name
	Key      string // deduplication key: stays the same when the platform redelivers
	Push     *Push  // set when Kind is EventPush
	// BodyUnsigned says the platform's proof covers the headers but not the body (Gitee):
	// the same signed headers may come again with any body. A receiver must then treat
	// every later delivery with an already seen Key as a replay, whatever the earlier one's
	// verdict was, not only one that triggered something.
	BodyUnsigned bool
	// BodySigned says the proof covers the body (GitHub): a body a project has seen before
	// under another Key is a repost of an old delivery, never a new event.
	BodySigned bool
}

// Verifier checks and reads deliveries of one platform. Verify runs before Parse, on the
// raw body, with the project's secret; Parse never sees an unverified body.
type Verifier interface {
	Platform() Platform
	// Verify reports whether the request carries a valid proof of secret. now is the
	// receiver's clock, for platforms that sign a timestamp.
	Verify(h http.Header, body []byte, secret string, now time.Time) error
	// Parse reads a verified delivery. A delivery fabu does not act on is not an error:
	// it comes back with Kind EventOther.
	Parse(h http.Header, body []byte) (Delivery, error)
}

// HeaderVerifier is a Verifier whose proof is in the headers alone (GitLab's token, Gitee's
// token or signed timestamp). VerifyHeaders decides as Verify does, without the body, so a
// receiver refuses a delivery without the proof before it reads a byte of the body.
type HeaderVerifier interface {
	Verifier
	VerifyHeaders(h http.Header, secret string, now time.Time) error
}

// ModeVerifier is a Verifier of a platform whose hooks prove the secret in more than one
// way (Gitee: a signed timestamp or the password itself). The mode is a property of the hook
// as installed and is stored with the project; the receiver accepts only that one.
type ModeVerifier interface {
	Verifier
	// WithMode returns the verifier for mode ("" is the platform's default); an unknown
	// mode is an invalid error.
	WithMode(mode string) (Verifier, error)
}

// ErrSignature is the error of a delivery whose proof of secret is missing or wrong.
var ErrSignature = errors.New("webhook signature missing or invalid")

// ErrStale is the error of a signed delivery whose timestamp is outside the window.
var ErrStale = errors.New("webhook timestamp outside the accepted window")

// ZeroSHA reports whether sha is the all-zero id platforms send for a deleted ref.
func ZeroSHA(sha string) bool {
	if sha == "" {
		return false
	}
	for i := 0; i < len(sha); i++ {
		if sha[i] != '0' {
			return false
		}
	}
	return true
}
