-- webhook_rejections: how many deliveries the webhook service refused, per project, platform,
-- reason and hour (issue 10 item 13). Refused deliveries used to be stored one row each,
-- forever: one client wrote 3,685 rows in 5 s. Now every refusal is counted here, and only the
-- first few of each (project, platform, reason, hour) are kept as webhook_deliveries rows, for
-- their detail. project_id is '' when the delivery named no known project and platform ''
-- when it named no known platform; reason is one of a fixed set of codes (services/webhook,
-- Reject*), so the table grows with projects and hours, never with what senders choose.
-- sampled counts the rows kept. The webhook service deletes counts and delivery rows older
-- than --delivery-retention.

-- +goose Up
CREATE TABLE webhook_rejections (
    project_id   TEXT NOT NULL,
    platform     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    period_start {{TIMESTAMP}} NOT NULL,
    rejected     BIGINT NOT NULL DEFAULT 0,
    sampled      INTEGER NOT NULL DEFAULT 0,
    last_at      {{TIMESTAMP}} NOT NULL,
    PRIMARY KEY (project_id, platform, reason, period_start)
);
CREATE INDEX webhook_rejections_period ON webhook_rejections (period_start);

-- +goose Down
DROP TABLE webhook_rejections;
