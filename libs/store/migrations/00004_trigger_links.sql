-- Trigger links: a project's CI trigger URL carries a random token; only its SHA-256 (hex) is
-- stored, so a leaked database does not leak working URLs. Empty means no trigger URL. The
-- webhook service finds the project by the hash of the token it is given; the partial unique
-- index makes that lookup cheap and keeps two projects from ever sharing a token.

-- +goose Up
ALTER TABLE projects ADD COLUMN trigger_token_hash TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX projects_trigger_token_hash ON projects (trigger_token_hash) WHERE trigger_token_hash <> '';

-- +goose Down
DROP INDEX projects_trigger_token_hash;
ALTER TABLE projects DROP COLUMN trigger_token_hash;
