package workspace

import "fabu.dev/libs/gitref"

// remote is a repository URL split for git: the URL git may see, and the environment
// entries that give it the credentials (gitref.SplitCredentials).
type remote struct {
	url string   // without user info
	env []string // nil when the URL carries no credentials
}

// splitCredentials removes the user info from an http(s) URL and returns the environment
// that supplies it to git through GIT_ASKPASS from the workspace's private git HOME.
func (w *Workspace) splitCredentials(raw string) (remote, error) {
	home, err := w.home()
	if err != nil {
		return remote{}, err
	}
	u, env, err := gitref.SplitCredentials(raw, home)
	return remote{url: u, env: env}, err
}

// Redact hides the user info of a URL (https://user:token@host/…) for logs and errors.
func Redact(raw string) string { return gitref.RedactURL(raw) }
