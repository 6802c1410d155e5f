-- The initial schema (docs/architecture.md, "Database schema"). Placeholders (TIMESTAMP,
-- NOW, SERIAL in double braces) are replaced per dialect before goose runs this file; see
-- migrate.go.
-- Ids are 26-character ULIDs made by the application. Timestamps are UTC.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE auth_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at {{TIMESTAMP}} NOT NULL,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE INDEX auth_tokens_user_id ON auth_tokens (user_id);

CREATE TABLE servers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    host       TEXT NOT NULL,
    port       INTEGER NOT NULL DEFAULT 22,
    ssh_user   TEXT NOT NULL,
    host_key   TEXT NOT NULL DEFAULT '',
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE projects (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    git_url             TEXT NOT NULL,
    platform            TEXT NOT NULL DEFAULT 'gitlab',
    namespace           TEXT NOT NULL DEFAULT '',
    type                TEXT NOT NULL,
    source_dir          TEXT NOT NULL DEFAULT '',
    branch              TEXT NOT NULL DEFAULT '',
    deploy_path         TEXT NOT NULL,
    keep_releases       INTEGER NOT NULL DEFAULT 5,
    webhook_secret_hash TEXT NOT NULL DEFAULT '',
    created_at          {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at          {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE project_servers (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    server_id  TEXT NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, server_id)
);
CREATE INDEX project_servers_server_id ON project_servers (server_id);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ref             TEXT NOT NULL DEFAULT '',
    commit_sha      TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    trigger         TEXT NOT NULL DEFAULT '',
    triggered_by    TEXT NOT NULL DEFAULT '',
    progress        INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    artifact_path   TEXT NOT NULL DEFAULT '',
    artifact_sha256 TEXT NOT NULL DEFAULT '',
    release_id      TEXT NOT NULL DEFAULT '',
    lock_token      BIGINT NOT NULL DEFAULT 0,
    heartbeat_at    {{TIMESTAMP}} NULL,
    created_at      {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    started_at      {{TIMESTAMP}} NULL,
    finished_at     {{TIMESTAMP}} NULL,
    updated_at      {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE INDEX runs_project_id_created_at ON runs (project_id, created_at);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE run_logs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    line   INTEGER NOT NULL,
    ts     {{TIMESTAMP}} NOT NULL,
    stream TEXT NOT NULL DEFAULT '',
    text   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, line)
);

CREATE TABLE outbox (
    seq          {{SERIAL}},
    id           TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    msg_key      TEXT NOT NULL DEFAULT '',
    payload      TEXT NOT NULL,
    headers      TEXT NOT NULL DEFAULT '{}',
    created_at   {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    published_at {{TIMESTAMP}} NULL
);
-- The relay reads unpublished rows in seq order.
CREATE INDEX outbox_published_at_seq ON outbox (published_at, seq);

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    platform     TEXT NOT NULL,
    event        TEXT NOT NULL DEFAULT '',
    project_id   TEXT NULL, -- no foreign key: deliveries for unknown or deleted projects are kept
    verdict      TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    delivery_key TEXT NOT NULL DEFAULT '',
    run_id       TEXT NOT NULL DEFAULT '',
    received_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);

CREATE TABLE notification_deliveries (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL UNIQUE,
    run_id     TEXT NOT NULL DEFAULT '',
    channel    TEXT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

-- +goose Down
DROP TABLE settings;
DROP TABLE notification_deliveries;
DROP TABLE webhook_deliveries;
DROP TABLE processed_events;
DROP TABLE outbox;
DROP TABLE run_logs;
DROP TABLE runs;
DROP TABLE project_servers;
DROP TABLE projects;
DROP TABLE servers;
DROP TABLE auth_tokens;
DROP TABLE users;
