-- Forge connections: a GitLab, GitHub or Gitee installation fabu reaches with a sealed access
-- token, and the repositories a sync found there. A repository the platform no longer lists
-- is marked gone, never dropped (projects may still point at it); one a user removed from
-- fabu stays removed across syncs. Projects name the connection and path they come from and
-- the id of the hook fabu installed, so fabu deletes only its own hook.

-- +goose Up
CREATE TABLE forge_connections (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    platform     TEXT NOT NULL,
    base_url     TEXT NOT NULL DEFAULT '',
    token_sealed TEXT NOT NULL DEFAULT '',
    sync_state   TEXT NOT NULL DEFAULT 'never' CHECK (sync_state IN ('never', 'ok', 'failed')),
    sync_error   TEXT NOT NULL DEFAULT '',
    synced_at    {{TIMESTAMP}} NULL,
    created_at   {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at   {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE forge_repos (
    id             TEXT PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES forge_connections (id) ON DELETE CASCADE,
    remote_id      TEXT NOT NULL,
    path           TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    namespace      TEXT NOT NULL DEFAULT '',
    default_branch TEXT NOT NULL DEFAULT '',
    http_url       TEXT NOT NULL DEFAULT '',
    ssh_url        TEXT NOT NULL DEFAULT '',
    web_url        TEXT NOT NULL DEFAULT '',
    archived       BOOLEAN NOT NULL DEFAULT FALSE,
    gone           BOOLEAN NOT NULL DEFAULT FALSE,
    removed        BOOLEAN NOT NULL DEFAULT FALSE,
    first_seen_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    last_seen_at   {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    UNIQUE (connection_id, remote_id)
);
CREATE INDEX forge_repos_connection_path ON forge_repos (connection_id, path);

ALTER TABLE projects ADD COLUMN connection_id TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN repo_path TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN hook_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE projects DROP COLUMN hook_id;
ALTER TABLE projects DROP COLUMN repo_path;
ALTER TABLE projects DROP COLUMN connection_id;
DROP TABLE forge_repos;
DROP TABLE forge_connections;
