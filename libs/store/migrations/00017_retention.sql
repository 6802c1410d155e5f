-- Retention (issue 5, and "logs stored 30 days by default"): the gateway's retention loop
-- deletes audit entries older than --audit-retention and the log lines of runs that finished
-- more than --log-retention ago. runs.logs_pruned_at records when a run's log was removed,
-- so the API can say the log expired (instead of showing an empty log) and the loop never
-- visits the run again. The run row itself, its stages and its artifact record stay.

-- +goose Up
ALTER TABLE runs ADD COLUMN logs_pruned_at {{TIMESTAMP}} NULL;
CREATE INDEX runs_finished_at ON runs (finished_at);

-- +goose Down
DROP INDEX runs_finished_at;
ALTER TABLE runs DROP COLUMN logs_pruned_at;
