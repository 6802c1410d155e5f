-- projects.build_offline: the project's build stages run without a network (a sandbox
-- with only loopback), for builds that must not reach anything: their dependencies are
-- vendored or restored from fabu's caches. FALSE, the default, leaves the network to the
-- stages (registries).

-- +goose Up
ALTER TABLE projects ADD COLUMN build_offline BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE projects DROP COLUMN build_offline;
