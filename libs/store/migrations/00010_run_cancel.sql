-- Cancelling a run (POST /api/v1/runs/:id/cancel): a building or deploying run is held by a
-- worker, so the gateway only marks it (cancel_requested_at, cancel_requested_by); the
-- worker's next heartbeat sees the mark, stops its processes and finishes the run as
-- cancelled. Requested and queued runs are cancelled at once and never get the mark.

-- +goose Up
ALTER TABLE runs ADD COLUMN cancel_requested_at {{TIMESTAMP}} NULL;
ALTER TABLE runs ADD COLUMN cancel_requested_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN cancel_requested_by;
ALTER TABLE runs DROP COLUMN cancel_requested_at;
