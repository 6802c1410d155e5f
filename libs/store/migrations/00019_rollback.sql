-- runs.rollback_of: a rollback is a run that puts back the release an earlier succeeded run
-- of the same project deployed, without building (services/builder rollback.go,
-- services/deployer rollback.go). It holds that earlier run's id; '' for every other run.
-- It goes through the same queue and target lock as a deploy.

-- +goose Up
ALTER TABLE runs ADD COLUMN rollback_of TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN rollback_of;
