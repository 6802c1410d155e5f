-- Build secrets and artifact manifests (issue 4, items 5 and 6).
--
-- project_secrets: a project's build secrets. name is an environment variable name, unique
-- per project; value_sealed is the value sealed with the master keys (libs/secret) for the
-- place "project_secrets/<id>/value", so a sealed value copied into another row does not
-- open, and `fabu secrets rotate` re-seals it. The API never returns values; updated_by
-- is the user name of whoever set the value last.
--
-- runs.artifact_manifest: the JSON manifest of the run's artifact (libs/artifact
-- BuildManifest), also stored beside the artifact in the builder's store; the gateway
-- serves it at GET /api/v1/runs/:id/artifact. '' until the run has an artifact.

-- +goose Up
CREATE TABLE project_secrets (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value_sealed TEXT NOT NULL,
    created_at   {{TIMESTAMP}} NOT NULL,
    updated_at   {{TIMESTAMP}} NOT NULL,
    updated_by   TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, name)
);

ALTER TABLE runs ADD COLUMN artifact_manifest TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN artifact_manifest;
DROP TABLE project_secrets;
