-- Progress estimates (issue 4, "progress shows a percentage and ETA learned from history"):
-- the gateway reads the last succeeded runs of a project, and of a project type, newest
-- finished first, with their run_stages rows (libs/estimate learns medians from them). These
-- indexes let both reads stop after a few rows instead of sorting every succeeded run: by
-- project (project_id, status, finished_at), and across projects (status, finished_at).

-- +goose Up
CREATE INDEX runs_project_status_finished_at ON runs (project_id, status, finished_at);
CREATE INDEX runs_status_finished_at ON runs (status, finished_at);

-- +goose Down
DROP INDEX runs_status_finished_at;
DROP INDEX runs_project_status_finished_at;
