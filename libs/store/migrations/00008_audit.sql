-- The audit log (issue 5): one row per change, deploy, cancel, rollback, approval, terminal
-- session, sign-in and refused attempt — who (actor, actor_id), what (action, target,
-- target_id, detail), when (at), from where (ip, user_agent) and how it ended (outcome: ok,
-- refused, failed). libs/audit writes and reads it.
--
-- id is a serial, not a ULID: it is the keyset cursor of the API (newest first, "before"),
-- which needs a strict total order without ties. detail is a JSON object with secrets
-- already redacted by libs/audit. Rows are only ever inserted.

-- +goose Up
CREATE TABLE audit_log (
    id         {{SERIAL}},
    at         {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    actor      TEXT NOT NULL DEFAULT '',
    actor_id   TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target     TEXT NOT NULL DEFAULT '',
    target_id  TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL,
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, target_id, id);
CREATE INDEX audit_log_target_id ON audit_log (target_id, id);

-- +goose Down
DROP TABLE audit_log;
