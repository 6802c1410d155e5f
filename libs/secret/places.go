package secret

import (
	"regexp"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/cmdline"
)

// BuildSecretPlace is the place (additional data) a project's build secret is sealed for:
// its row in project_secrets. The gateway seals there, the builder opens there and key
// rotation re-seals there, so the three agree through this one function.
func BuildSecretPlace(id string) string { return "project_secrets/" + id + "/value" }

// nameRE is what a build secret's name must look like: an environment variable name.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// CheckBuildSecretName checks the name of a build secret: an environment variable name
// (letters, digits and _, not starting with a digit, at most 128) that a build may declare
// (cmdline.ReservedEnv: not HOME, PATH, FABU_* or LD_*). The gateway checks names when
// secrets are stored and pipelines saved, the builder when it reads .fabu.yml: one rule
// for both.
func CheckBuildSecretName(name string) error {
	if !nameRE.MatchString(name) {
		return apperr.Invalid("secret name %q: use letters, digits and _, not starting with a digit (at most 128)", name)
	}
	if why := cmdline.ReservedEnv(name); why != "" {
		return apperr.Invalid("secret name %s %s and cannot be a secret", name, why)
	}
	return nil
}

// GitCredentialsPlace is the place a project's repository credentials are sealed for: the
// user info (user:token) taken out of its git_url and kept in projects.git_credentials_sealed,
// so that the URL viewers see carries none. The gateway and the database migration seal
// there; the builder, the webhook service and the gateway's ls-remote open there.
func GitCredentialsPlace(projectID string) string {
	return "projects/" + projectID + "/git_credentials"
}
