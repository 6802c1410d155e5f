-- projects.trigger_token_created_by: the user who created the project's trigger URL. The
-- URL acts with that user's rights, checked each time it fires (their project role against
-- deploy_role, the server-group rules of every target, not disabled). '' for URLs made
-- before this column: they refuse until someone who may deploy makes a new one.
--
-- auth_login_throttle: failed sign-ins per (user name as typed, client address). A pair
-- with too many recent failures backs off exponentially; it slows only that client.
-- auth_login_failures keeps the failures of a user name from every address; locked_until
-- now means "slowed down until": while it holds, only clients without recent failures
-- (no row here with a recent last_failure_at) may try the name, so nobody can keep its
-- owner out by failing on purpose.

-- +goose Up
ALTER TABLE projects ADD COLUMN trigger_token_created_by TEXT NOT NULL DEFAULT '';

CREATE TABLE auth_login_throttle (
    username        TEXT NOT NULL,
    address         TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_failure_at {{TIMESTAMP}} NOT NULL,
    blocked_until   {{TIMESTAMP}},
    PRIMARY KEY (username, address)
);
CREATE INDEX auth_login_throttle_address ON auth_login_throttle (address, last_failure_at);

ALTER TABLE auth_login_failures ADD COLUMN last_failure_at {{TIMESTAMP}};

-- +goose Down
ALTER TABLE auth_login_failures DROP COLUMN last_failure_at;
DROP TABLE auth_login_throttle;
ALTER TABLE projects DROP COLUMN trigger_token_created_by;
