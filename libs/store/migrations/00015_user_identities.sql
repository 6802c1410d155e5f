-- Sign-in through GitLab (OpenID Connect) or GitHub (OAuth2) (issue 5, services/auth/oauth*.go).
--
-- user_identities: an account at a sign-in provider ("gitlab", "github") linked to a fabu
-- user. subject is the provider's stable user id (the id_token's sub; GitHub's numeric id),
-- never the email or login, which can change hands. One identity per provider and user.
-- Identities are linked by the signed-in user from the Account page, or created with a new
-- user when the provider auto-provisions; never by matching an email to an existing user.
-- email is the provider's verified email at the last sign-in ('' when it has none), login
-- the user name there; both are shown, neither decides anything after linking.
--
-- auth_oauth_flows: one browser's sign-in or link attempt, for at most ten minutes. The
-- browser holds a random handle in an HttpOnly cookie; only its SHA-256 (handle_hash) is
-- stored, and the PKCE verifier is derived from the handle, so these rows alone cannot
-- finish a flow. state and nonce travel through the provider in the clear anyway.
-- callback_at marks the state used (single use); after a sign-in callback the row holds the
-- signed-in user and the SHA-256 of a one-time code (code_hash) that the SPA exchanges,
-- with the same cookie, for its tokens within a minute (exchanged_at).
-- purpose is 'login' or 'link'; a link flow names the user and session that asked for it.

-- +goose Up
CREATE TABLE user_identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email         TEXT NOT NULL DEFAULT '',
    login         TEXT NOT NULL DEFAULT '',
    linked_at     {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    last_login_at {{TIMESTAMP}},
    PRIMARY KEY (provider, subject)
);
CREATE UNIQUE INDEX user_identities_user_provider ON user_identities (user_id, provider);

CREATE TABLE auth_oauth_flows (
    id              TEXT PRIMARY KEY,
    handle_hash     TEXT NOT NULL UNIQUE,
    provider        TEXT NOT NULL,
    purpose         TEXT NOT NULL CHECK (purpose IN ('login', 'link')),
    state           TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    redirect        TEXT NOT NULL DEFAULT '',
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id      TEXT NOT NULL DEFAULT '',
    expires_at      {{TIMESTAMP}} NOT NULL,
    callback_at     {{TIMESTAMP}},
    code_hash       TEXT UNIQUE,
    code_expires_at {{TIMESTAMP}},
    exchanged_at    {{TIMESTAMP}},
    created_at      {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE INDEX auth_oauth_flows_expires_at ON auth_oauth_flows (expires_at);

-- +goose Down
DROP TABLE auth_oauth_flows;
DROP TABLE user_identities;
