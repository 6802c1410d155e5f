-- projects.webhook_mode: how the project's hook proves it knows the webhook secret, for
-- platforms with more than one way (forge.ModeVerifier). '' is the platform's default and
-- the only mode fabu installs hooks in (Gitee: a signed timestamp); 'password' is Gitee's
-- password mode, for a hook someone created by hand in Gitee's settings with a password.
-- The webhook service accepts only the stored mode, never either.
--
-- webhook_deliveries_key: Gitee signs only the headers, so a delivery whose key was seen
-- before with any verdict is a replay (services/webhook, keySeen); this index serves that
-- lookup.

-- +goose Up
ALTER TABLE projects ADD COLUMN webhook_mode TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_deliveries_key ON webhook_deliveries (platform, delivery_key) WHERE delivery_key <> '';

-- +goose Down
DROP INDEX webhook_deliveries_key;
ALTER TABLE projects DROP COLUMN webhook_mode;
