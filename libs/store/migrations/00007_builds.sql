-- Builds (issue 4): a project's build settings, the stages of each run, and the artifacts
-- that were built, so a commit is built once and deployed many times.
--
-- projects: build_profile (Maven -P / Gradle -Pprofile=), build_script (the package.json
-- script of a frontend build), build_output_dir (what that script writes), build_image (the
-- repository a docker build pushes to), build_env (a JSON object of plain variables given to
-- every stage; secrets never go here) and pipeline (the project's stages in the JSON form of
-- .fabu.yml, configured in the SPA; '' means the recipe's defaults; a .fabu.yml in the
-- repository takes precedence).
--
-- run_stages: one row per stage of a run's latest build attempt, written when the stage
-- starts (running) and when it ends (succeeded, failed, cancelled), or skipped when an
-- earlier stage failed. duration_ms feeds progress estimates; exit_code is NULL when no
-- process exited (not started, killed, not found).
--
-- artifacts: the artifact a successful build of commit_sha under a plan fingerprint made
-- (see the builder's pipeline.Plan.Fingerprint). A later run of the same commit and
-- fingerprint reuses the file at path once its sha256 still matches.

-- +goose Up
ALTER TABLE projects ADD COLUMN build_profile TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN build_script TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN build_output_dir TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN build_image TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN build_env TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN pipeline TEXT NOT NULL DEFAULT '';

CREATE TABLE run_stages (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  {{TIMESTAMP}} NOT NULL,
    finished_at {{TIMESTAMP}},
    duration_ms BIGINT NOT NULL DEFAULT 0,
    exit_code   INTEGER,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE artifacts (
    fingerprint  TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   {{TIMESTAMP}} NOT NULL,
    last_used_at {{TIMESTAMP}} NOT NULL,
    PRIMARY KEY (fingerprint, commit_sha)
);

-- +goose Down
DROP TABLE artifacts;
DROP TABLE run_stages;
ALTER TABLE projects DROP COLUMN pipeline;
ALTER TABLE projects DROP COLUMN build_env;
ALTER TABLE projects DROP COLUMN build_image;
ALTER TABLE projects DROP COLUMN build_output_dir;
ALTER TABLE projects DROP COLUMN build_script;
ALTER TABLE projects DROP COLUMN build_profile;
