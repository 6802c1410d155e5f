package gateway

import (
	"fmt"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/container"
)

// Docker projects: the builder pushes the image to build_image (registry host required) and
// the deployer runs it with the container settings. Every setting is validated here, before
// anything reaches a builder or an SSH session, by the same rules the deployer applies
// (libs/container).

// maxRegistryPassword bounds a registry password or token.
const maxRegistryPassword = 4096

// dockerSettings checks b's docker settings and stores them in m. Other project types may
// not carry any.
func (b ProjectBody) dockerSettings(m *Project) error {
	if b.Type != "docker" {
		if b.Docker != nil || b.DockerPassword != "" {
			return apperr.Invalid("project %s: docker settings are only for projects of type docker", b.Name)
		}
		return nil
	}
	if b.BuildImage == "" {
		return apperr.Invalid("project %s: build_image: a docker project needs the repository its images are pushed to (registry.example.com/team/app)", b.Name)
	}
	if _, _, err := container.ParseRepository(b.BuildImage); err != nil {
		return apperr.Invalid("project %s: build_image: %s", b.Name, err.Error())
	}
	var st container.Settings
	if b.Docker != nil {
		st = *b.Docker
	}
	if err := st.Validate(); err != nil {
		return apperr.Invalid("project %s: %s", b.Name, err.Error())
	}
	if b.DockerPassword != "" && st.Username == "" {
		return apperr.Invalid("project %s: docker_password needs docker.username", b.Name)
	}
	if len(b.DockerPassword) > maxRegistryPassword {
		return apperr.Invalid("project %s: docker_password is longer than %d bytes", b.Name, maxRegistryPassword)
	}
	enc, err := st.Encode()
	if err != nil {
		return err
	}
	m.DockerSettings = enc
	return nil
}

// sealDockerPassword seals a new registry password for project m (whose ID is known).
func (s *Service) sealDockerPassword(m *Project, b ProjectBody) error {
	if m.Type != "docker" || b.Docker == nil || b.Docker.Username == "" {
		m.DockerPasswordSealed = "" // no user, no password
		return nil
	}
	if b.DockerPassword == "" {
		return nil
	}
	sealed, err := s.cfg.Secrets.Seal([]byte(b.DockerPassword), container.PasswordPlace(m.ID))
	if err != nil {
		return fmt.Errorf("seal registry password of %s: %w", m.Name, err)
	}
	m.DockerPasswordSealed = sealed
	return nil
}

// dockerOf returns m's docker settings for the API; nil for other types.
func dockerOf(m Project) *container.Settings {
	if m.Type != "docker" {
		return nil
	}
	st, err := container.Parse(m.DockerSettings)
	if err != nil {
		return &container.Settings{} // written by dockerSettings, so always valid; never fail a read on it
	}
	return &st
}

// applyDockerPassword keeps old's registry password for m in /apply, re-sealing only a
// password that differs from the stored one, so applying the same document again leaves
// the project unchanged.
func (s *Service) applyDockerPassword(m *Project, old Project, b ProjectBody) error {
	if m.Type != "docker" || b.Docker == nil || b.Docker.Username == "" {
		m.DockerPasswordSealed = ""
		return nil
	}
	m.DockerPasswordSealed = old.DockerPasswordSealed
	if b.DockerPassword == "" || s.sealedIs(old.DockerPasswordSealed, container.PasswordPlace(old.ID), b.DockerPassword) {
		return nil
	}
	return s.sealDockerPassword(m, b)
}
