-- Docker projects (issue 4): how a docker project's image is pushed and its container run.
--
-- projects.docker_settings: the container settings as JSON (libs/container.Settings: the
-- container CLI on the targets, the registry's transport and user name, published ports,
-- environment, volumes, restart policy, network and the health check); '' for none. The
-- repository images are pushed to is projects.build_image.
-- projects.docker_password_sealed: the registry password, sealed (AES-256-GCM, libs/secret)
-- for "projects/<id>/docker_password"; never returned by the API.

-- +goose Up
ALTER TABLE projects ADD COLUMN docker_settings TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN docker_password_sealed TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE projects DROP COLUMN docker_password_sealed;
ALTER TABLE projects DROP COLUMN docker_settings;
