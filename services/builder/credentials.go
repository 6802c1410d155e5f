package builder

import (
	"fmt"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/secret"
)

// remoteURL returns project p's repository URL with its credentials, which are stored
// sealed apart from the URL (the gateway splits them off). It is for git alone: the
// workspace gives git the URL without them and the credentials through its environment
// (gitref.SplitCredentials), and logs show URLs through Redact.
func (s *Service) remoteURL(p project) (string, error) {
	if p.GitCredentialsSealed == "" {
		return p.GitURL, nil
	}
	if s.cfg.Secrets == nil {
		return "", apperr.Unavailable("project %s has repository credentials, but this builder has no master key to open them (set FABU_MASTER_KEY or --master-key-file)", p.Name)
	}
	info, err := s.cfg.Secrets.Open(p.GitCredentialsSealed, secret.GitCredentialsPlace(p.ID))
	if err != nil {
		return "", fmt.Errorf("open the repository credentials of %s: %w", p.Name, err)
	}
	return gitref.JoinUserinfo(p.GitURL, string(info)), nil
}
