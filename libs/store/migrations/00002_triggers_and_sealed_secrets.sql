-- Webhook secrets are sealed (AES-256-GCM, libs/secret) instead of hashed: GitHub and Gitee
-- sign with the secret, so fabu must be able to read it. Existing hashes cannot be turned
-- into secrets; projects set their secret again. Trigger rules decide which pushes deploy.

-- +goose Up
ALTER TABLE projects ADD COLUMN webhook_secret_sealed TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN trigger_branches TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN trigger_tags TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN trigger_keyword TEXT NOT NULL DEFAULT 'devops';
ALTER TABLE projects ADD COLUMN trigger_keyword_scope TEXT NOT NULL DEFAULT 'head';
ALTER TABLE projects DROP COLUMN webhook_secret_hash;
ALTER TABLE webhook_deliveries ADD COLUMN ref TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN commit_sha TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN commit_sha;
ALTER TABLE webhook_deliveries DROP COLUMN ref;
ALTER TABLE projects ADD COLUMN webhook_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE projects DROP COLUMN trigger_keyword_scope;
ALTER TABLE projects DROP COLUMN trigger_keyword;
ALTER TABLE projects DROP COLUMN trigger_tags;
ALTER TABLE projects DROP COLUMN trigger_branches;
ALTER TABLE projects DROP COLUMN webhook_secret_sealed;
