package builder

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/secret"
	"fabu.dev/services/builder/pipeline"
)

// Build secrets. A project's secrets (project_secrets, sealed with the master keys and
// written only through the gateway's write-only API) are opened when a run is admitted,
// before its log is opened, so the log masks their values from its first line — every
// secret of the project, declared or not. A stage receives only the secrets it declares
// (`secrets: [NAME]` in .fabu.yml or the project's pipeline), as environment variables; a
// stage declaring a secret the project does not have fails the run at once, naming it.
//
// The values of the declared secrets are part of what decides the artifact (a front end
// may bake an API key into its bundle), so they enter the plan's fingerprint through an
// HMAC under a key derived from the master keys: two projects of one repository with
// different secrets never reuse each other's artifact, and the stored fingerprint reveals
// nothing about a value.

// secretFingerprintPurpose derives the key that mixes secret values into fingerprints.
const secretFingerprintPurpose = "build-secret-fingerprint/v1"

// secretRow is what the builder reads of project_secrets.
type secretRow struct {
	ID          string
	Name        string
	ValueSealed string
}

// loadSecrets opens every build secret of project pid.
func (s *Service) loadSecrets(ctx context.Context, pid string) (map[string]string, error) {
	var rows []secretRow
	err := s.db.WithContext(ctx).Table("project_secrets").Select("id, name, value_sealed").
		Where("project_id = ?", pid).Order("name").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load build secrets: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if s.cfg.Secrets == nil {
		return nil, apperr.New(apperr.CodeUnavailable, "the project has build secrets, but this builder has no master key to open them")
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		v, err := s.cfg.Secrets.Open(r.ValueSealed, secret.BuildSecretPlace(r.ID))
		if err != nil {
			return nil, fmt.Errorf("build secret %s: %w", r.Name, secret.Unavailable(err))
		}
		out[r.Name] = string(v)
	}
	return out, nil
}

// declaredSecrets checks that every secret plan's stages declare exists and returns the
// sorted names declared anywhere in the plan.
func declaredSecrets(plan pipeline.Plan, secrets map[string]string) ([]string, error) {
	var names []string
	for _, st := range plan.Stages {
		for _, n := range st.Secrets {
			if _, ok := secrets[n]; !ok {
				return nil, apperr.Invalid("stage %s declares the secret %s, which the project does not have: add it on the project page or remove it from the stage", st.Name, n)
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// stageSecrets returns the secrets stage st declares, with their values.
func stageSecrets(st pipeline.Stage, secrets map[string]string) map[string]string {
	if len(st.Secrets) == 0 {
		return nil
	}
	out := make(map[string]string, len(st.Secrets))
	for _, n := range st.Secrets {
		out[n] = secrets[n]
	}
	return out
}

// secretFingerprint mixes the values of the declared secrets into the plan fingerprint fp.
// Without declared secrets fp is returned unchanged, so existing fingerprints stay valid.
func (s *Service) secretFingerprint(fp string, declared []string, secrets map[string]string) string {
	if len(declared) == 0 || s.cfg.Secrets == nil {
		return fp
	}
	mac := hmac.New(sha256.New, s.cfg.Secrets.Derive(secretFingerprintPurpose)[0])
	for _, n := range declared {
		v := secrets[n]
		fmt.Fprintf(mac, "%s\x00%d\x00%s\x00", n, len(v), v)
	}
	sum := sha256.Sum256([]byte(fp + "\x00secrets\x00" + hex.EncodeToString(mac.Sum(nil))))
	return hex.EncodeToString(sum[:])
}

// secretNames lists the names of secrets for the log; never their values.
func secretNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
