-- Old-tool git features (issue 4, item 4): merging other refs into a run's commit before
-- building, and git actions after a successful run.
--
-- projects.merge_refs: a JSON array of branch, tag or commit names merged, in order, into
-- each run's commit before it is built ('' or '[]': none). A `merge:` list in .fabu.yml
-- replaces it.
-- projects.git_actions: a JSON object of the opt-in actions after a successful deploy:
-- {"tag": "<name template>", "merge_into": "<branch>", "merge_mode": "ff-only"|"merge"}
-- ('' : none).
--
-- run_git: per run, what was merged (base_commit, the commit the ref named; merged_commit,
-- what was built; merged_refs, a JSON array of {ref, commit, result}) and the post-success
-- actions: actions_state '' (none yet), running, done or warning, and actions, a JSON array
-- of {action, target, commit, outcome, message}. A warning never changes the run's status.

-- +goose Up
ALTER TABLE projects ADD COLUMN merge_refs TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN git_actions TEXT NOT NULL DEFAULT '';

CREATE TABLE run_git (
    run_id        TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    base_commit   TEXT NOT NULL DEFAULT '',
    merged_commit TEXT NOT NULL DEFAULT '',
    merged_refs   TEXT NOT NULL DEFAULT '',
    actions_state TEXT NOT NULL DEFAULT '',
    actions       TEXT NOT NULL DEFAULT '',
    updated_at    {{TIMESTAMP}} NOT NULL
);

-- +goose Down
DROP TABLE run_git;
ALTER TABLE projects DROP COLUMN git_actions;
ALTER TABLE projects DROP COLUMN merge_refs;
