-- One triggering delivery per platform delivery key: two copies of one delivery arriving
-- at once can no longer both start a run (the check-then-insert had no constraint), and
-- the duplicate lookup is an index probe instead of a scan of the delivery log.

-- +goose Up
CREATE UNIQUE INDEX webhook_deliveries_triggered_key ON webhook_deliveries (platform, delivery_key)
    WHERE verdict = 'triggered' AND delivery_key <> '';

-- +goose Down
DROP INDEX webhook_deliveries_triggered_key;
