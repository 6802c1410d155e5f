package gateway

import (
	"fmt"

	"fabu.dev/libs/gitref"
	"fabu.dev/libs/secret"
)

// Repository credentials. A project's git_url may be given with user info
// (https://oauth2:<token>@gitlab.example.com/g/app.git): toModel splits it off, and it is
// sealed into projects.git_credentials_sealed, so the URL every viewer reads carries no
// token. The processes that run git put it back for that one git process (remoteURL here,
// the builder and the webhook service likewise), which gets it through its environment.

// sealGitCredentials sets m's sealed credentials (m's ID is known): the ones given with its
// URL, sealed anew unless old already holds them (so applying a document twice changes
// nothing); else old's, while the URL still names old's scheme and host — a form shows the
// URL without its token and sends it back so — unless remove is set. A URL on another host
// never receives old's token.
func (s *Service) sealGitCredentials(m *Project, old Project, remove bool) error {
	given := m.credentials
	m.credentials = ""
	place := secret.GitCredentialsPlace(m.ID)
	switch {
	case given != "" && old.ID == m.ID && s.sealedIs(old.GitCredentialsSealed, place, given):
		m.GitCredentialsSealed = old.GitCredentialsSealed
	case given != "":
		sealed, err := s.cfg.Secrets.Seal([]byte(given), place)
		if err != nil {
			return fmt.Errorf("seal repository credentials of %s: %w", m.Name, err)
		}
		m.GitCredentialsSealed = sealed
	case !remove && old.ID == m.ID && old.GitCredentialsSealed != "" && gitref.SameOrigin(old.GitURL, m.GitURL):
		m.GitCredentialsSealed = old.GitCredentialsSealed
	default:
		m.GitCredentialsSealed = ""
	}
	return nil
}

// remoteURL returns p's repository URL with its credentials, for git (which takes them from
// its environment: gitref.SplitCredentials) and never for a log or an answer.
func (s *Service) remoteURL(p Project) (string, error) {
	if p.GitCredentialsSealed == "" {
		return p.GitURL, nil
	}
	info, err := s.cfg.Secrets.Open(p.GitCredentialsSealed, secret.GitCredentialsPlace(p.ID))
	if err != nil {
		return "", fmt.Errorf("open repository credentials of %s: %w", p.Name, err)
	}
	return gitref.JoinUserinfo(p.GitURL, string(info)), nil
}
