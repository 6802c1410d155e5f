-- Environment rules and release tickets (issue 5 item 2; DESIGN.md "an approved release
-- ticket").
--
-- environment_rules: one row per project that has rules beyond projects.deploy_role (a
-- project without a row needs no approval). approval is 'none', 'required' (every deploy
-- needs an approved ticket) or 'required_below_role' (callers whose role on the project is
-- below approval_role need one; webhooks, trigger URLs and schedules always do). Approvers
-- are the holders of approver_role (or above) in the project's group and/or the members of
-- the user group approver_group_id; approvals_needed distinct approvers must approve.
-- deploy_windows is a JSON list of {"days":[1..7 (Monday=1)],"start":"HH:MM","end":"HH:MM"}
-- in time_zone ('' = none); outside every window a deploy needs a ticket too.
-- ticket_ttl_hours: a ticket not started within that time expires.
--
-- release_tickets: a request to deploy commit_sha (pinned: the run deploys exactly it) of
-- ref. status: pending → approved → started, or pending → rejected | cancelled | expired,
-- approved → expired. A user's ticket has requester_id; one opened by a webhook, trigger URL
-- or schedule has requester_id '' and requested_by the pusher or "trigger URL". run_id is the
-- run it started; delivery_id the delivery that opened it. The background loop claims an
-- approved ticket with a conditional UPDATE (status = 'approved' → 'started'), so several
-- gateways start it once.
--
-- release_ticket_reviews: one decision per reviewer and ticket (approve or reject, with a
-- comment).

-- +goose Up
CREATE TABLE environment_rules (
    project_id        TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    approval          TEXT NOT NULL DEFAULT 'none',
    approval_role     TEXT NOT NULL DEFAULT 'maintainer',
    approver_role     TEXT NOT NULL DEFAULT 'maintainer',
    approver_group_id TEXT REFERENCES user_groups(id) ON DELETE SET NULL,
    approvals_needed  INTEGER NOT NULL DEFAULT 1,
    deploy_windows    TEXT NOT NULL DEFAULT '',
    time_zone         TEXT NOT NULL DEFAULT '',
    ticket_ttl_hours  INTEGER NOT NULL DEFAULT 168,
    updated_by        TEXT NOT NULL DEFAULT '',
    updated_at        {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    CHECK (approval IN ('none', 'required', 'required_below_role')),
    CHECK (approval_role IN ('developer', 'maintainer', 'owner')),
    CHECK (approver_role IN ('', 'developer', 'maintainer', 'owner')),
    CHECK (approvals_needed BETWEEN 1 AND 10),
    CHECK (ticket_ttl_hours BETWEEN 1 AND 8784)
);

CREATE TABLE release_tickets (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    ref              TEXT NOT NULL,
    commit_sha       TEXT NOT NULL,
    title            TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    requester_id     TEXT NOT NULL DEFAULT '',
    approvals_needed INTEGER NOT NULL,
    scheduled_at     {{TIMESTAMP}},
    expires_at       {{TIMESTAMP}} NOT NULL,
    run_id           TEXT NOT NULL DEFAULT '',
    delivery_id      TEXT NOT NULL DEFAULT '',
    decided_at       {{TIMESTAMP}},
    started_at       {{TIMESTAMP}},
    created_at       {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at       {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled', 'expired', 'started'))
);
CREATE INDEX release_tickets_project ON release_tickets (project_id, created_at);
CREATE INDEX release_tickets_status ON release_tickets (status, scheduled_at);

CREATE TABLE release_ticket_reviews (
    id          TEXT PRIMARY KEY,
    ticket_id   TEXT NOT NULL REFERENCES release_tickets(id) ON DELETE CASCADE,
    reviewer_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    decision    TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    created_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    CHECK (decision IN ('approve', 'reject'))
);
CREATE UNIQUE INDEX release_ticket_reviews_once ON release_ticket_reviews (ticket_id, reviewer_id);

-- A redelivered push that opened a ticket is a duplicate, like one that triggered a run.
CREATE UNIQUE INDEX webhook_deliveries_ticket_key ON webhook_deliveries (platform, delivery_key)
    WHERE verdict = 'ticket' AND delivery_key <> '';

-- +goose Down
DROP INDEX webhook_deliveries_ticket_key;
DROP TABLE release_ticket_reviews;
DROP TABLE release_tickets;
DROP TABLE environment_rules;
