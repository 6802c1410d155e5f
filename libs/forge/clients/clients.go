// Package clients picks the forge.Client of a connection's platform. It is the one place
// that knows every provider package, so services depend on forge.Client alone and a new
// platform is added here and nowhere else.
package clients

import (
	"net/http"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/forge/gitlab"
)

// Option adjusts the clients New makes.
type Option func(*options)

type options struct {
	hc *http.Client
}

// WithHTTPClient sends a client's requests through hc (its transport, proxy and timeout)
// instead of the provider's default.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// Platforms lists the platforms New knows, in a stable order.
var Platforms = []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee}

// Supported reports whether New knows platform p.
func Supported(p forge.Platform) bool {
	for _, q := range Platforms {
		if p == q {
			return true
		}
	}
	return false
}

// New returns the API client for conn, chosen by conn.Platform. An unknown platform is an
// invalid error.
func New(conn forge.Connection, opts ...Option) (forge.Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	switch conn.Platform {
	case forge.GitLab:
		var gopts []gitlab.Option
		if o.hc != nil {
			gopts = append(gopts, gitlab.WithHTTPClient(o.hc))
		}
		return gitlab.New(conn, gopts...)
	case forge.GitHub:
		var gopts []github.Option
		if o.hc != nil {
			gopts = append(gopts, github.WithHTTPClient(o.hc))
		}
		return github.New(conn, gopts...)
	case forge.Gitee:
		hc := o.hc
		if hc == nil {
			hc = &http.Client{Timeout: defaultGiteeTimeout}
		}
		return gitee.New(conn, hc)
	default:
		return nil, apperr.Invalid("forge platform %q is not gitlab, github or gitee", conn.Platform)
	}
}

// defaultGiteeTimeout bounds one Gitee exchange: gitee.New falls back to
// http.DefaultClient, which never times out.
const defaultGiteeTimeout = 60 * time.Second
