-- Roles (issue 5): who may see, change and deploy what, and on which servers.
--
-- users.disabled_at: a disabled user is refused by the gateway on every request, whatever
-- credential they hold; their logins are revoked when they are disabled.
--
-- user_groups / user_group_members: named sets of users, so a team is granted a role once.
--
-- project_groups: every project belongs to at most one group (projects.project_group_id);
-- a project in no group is visible to system administrators only. The migration creates the
-- group "default" (id 'default', not deletable) and puts every existing project in it; new
-- projects join it too (the column's default), so a maintainer of "default" may create
-- projects.
--
-- project_group_members: a user or a user group (exactly one) holds a role in a project
-- group: viewer < developer < maintainer < owner. A user's role in a group is the highest
-- of their own and their user groups'.
--
-- projects.deploy_role: the least role that may deploy the project (an environment is a
-- project): developer by default, maintainer or owner for production-like ones.
--
-- server_groups / servers.server_group_id / server_group_rules: a server in a group is
-- restricted: deploying to it (or opening a terminal on it) needs a rule of its group for
-- the user or one of their user groups that allows it. Servers in no group are unrestricted.
-- Ids are text (ULIDs, except the default group's).

-- +goose Up
ALTER TABLE users ADD COLUMN disabled_at {{TIMESTAMP}};

CREATE TABLE user_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE user_group_members (
    group_id TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX user_group_members_user_id ON user_group_members (user_id);

CREATE TABLE project_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
INSERT INTO project_groups (id, name) VALUES ('default', 'default');

-- No REFERENCES: SQLite cannot add a referencing column with a non-null default. The gateway
-- refuses to delete a group that still has projects, and only sets existing group ids.
ALTER TABLE projects ADD COLUMN project_group_id TEXT DEFAULT 'default';
ALTER TABLE projects ADD COLUMN deploy_role TEXT NOT NULL DEFAULT 'developer';
UPDATE projects SET project_group_id = 'default';
CREATE INDEX projects_project_group_id ON projects (project_group_id);

CREATE TABLE project_group_members (
    id               TEXT PRIMARY KEY,
    project_group_id TEXT NOT NULL REFERENCES project_groups(id) ON DELETE CASCADE,
    user_id          TEXT REFERENCES users(id) ON DELETE CASCADE,
    user_group_id    TEXT REFERENCES user_groups(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,
    created_at       {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    CHECK ((user_id IS NULL) <> (user_group_id IS NULL)),
    CHECK (role IN ('owner', 'maintainer', 'developer', 'viewer'))
);
CREATE UNIQUE INDEX project_group_members_user ON project_group_members (project_group_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX project_group_members_group ON project_group_members (project_group_id, user_group_id) WHERE user_group_id IS NOT NULL;
CREATE INDEX project_group_members_user_id ON project_group_members (user_id);

CREATE TABLE server_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

ALTER TABLE servers ADD COLUMN server_group_id TEXT REFERENCES server_groups(id) ON DELETE SET NULL;

CREATE TABLE server_group_rules (
    id              TEXT PRIMARY KEY,
    server_group_id TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    user_group_id   TEXT REFERENCES user_groups(id) ON DELETE CASCADE,
    may_deploy      BOOLEAN NOT NULL DEFAULT FALSE,
    may_terminal    BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((user_id IS NULL) <> (user_group_id IS NULL))
);
CREATE INDEX server_group_rules_group ON server_group_rules (server_group_id);

-- +goose Down
DROP TABLE server_group_rules;
ALTER TABLE servers DROP COLUMN server_group_id;
DROP TABLE server_groups;
DROP TABLE project_group_members;
DROP INDEX projects_project_group_id;
ALTER TABLE projects DROP COLUMN deploy_role;
ALTER TABLE projects DROP COLUMN project_group_id;
DROP TABLE project_groups;
DROP TABLE user_group_members;
DROP TABLE user_groups;
ALTER TABLE users DROP COLUMN disabled_at;
