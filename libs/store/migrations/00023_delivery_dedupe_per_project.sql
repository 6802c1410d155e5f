-- Delivery deduplication per project (issue 10 item 9). One event can reach several hooks
-- under one delivery id (GitHub documents it; GitLab's event UUID is shared by the hooks of
-- one event), and each project is an environment that must deploy it: the triggering keys
-- are unique per (project, platform, key), no longer per (platform, key).
--
-- body_sha256: the SHA-256 of a verified delivery's body ('' for unverified ones and for
-- deliveries refused without acting). GitHub signs the body, so a signed body that already
-- came to a project under another delivery id is a repost of an old push: the webhook
-- service refuses it, and webhook_deliveries_signed_body settles two copies that arrive at
-- once. It is GitHub's alone: GitLab and Gitee do not sign the body, and two different
-- pushes (A→B, B→A, A→B) can send the same one. For Gitee the hash tells a delivery that
-- reached two projects (same body) from headers replayed to another project (another body).
-- webhook_deliveries_key (00018) stays: it serves that cross-project lookup.

-- +goose Up
ALTER TABLE webhook_deliveries ADD COLUMN body_sha256 TEXT NOT NULL DEFAULT '';
DROP INDEX webhook_deliveries_triggered_key;
DROP INDEX webhook_deliveries_ticket_key;
CREATE UNIQUE INDEX webhook_deliveries_triggered_key ON webhook_deliveries (project_id, platform, delivery_key)
    WHERE verdict = 'triggered' AND delivery_key <> '';
CREATE UNIQUE INDEX webhook_deliveries_ticket_key ON webhook_deliveries (project_id, platform, delivery_key)
    WHERE verdict = 'ticket' AND delivery_key <> '';
CREATE UNIQUE INDEX webhook_deliveries_signed_body ON webhook_deliveries (project_id, body_sha256)
    WHERE platform = 'github' AND body_sha256 <> '' AND verdict IN ('triggered', 'ticket');
CREATE INDEX webhook_deliveries_body ON webhook_deliveries (project_id, body_sha256) WHERE body_sha256 <> '';

-- +goose Down
DROP INDEX webhook_deliveries_body;
DROP INDEX webhook_deliveries_signed_body;
DROP INDEX webhook_deliveries_ticket_key;
DROP INDEX webhook_deliveries_triggered_key;
CREATE UNIQUE INDEX webhook_deliveries_triggered_key ON webhook_deliveries (platform, delivery_key)
    WHERE verdict = 'triggered' AND delivery_key <> '';
CREATE UNIQUE INDEX webhook_deliveries_ticket_key ON webhook_deliveries (platform, delivery_key)
    WHERE verdict = 'ticket' AND delivery_key <> '';
ALTER TABLE webhook_deliveries DROP COLUMN body_sha256;
