-- Access tokens become short-lived EdDSA JWTs with refresh tokens; auth_tokens holds API
-- tokens (issue 5). Secrets are stored only as SHA-256 (hex) of random values, or sealed.
--
-- auth_tokens gains a name and scopes: it now holds API tokens for the CLI and CI. Rows
-- written before this migration were full login sessions of at most 12 hours; the scope
-- default keeps them working until they expire (a token's scopes are always capped by its
-- user's role). The auth service always writes scopes explicitly.
--
-- auth_signing_keys: Ed25519 keys; the private key is sealed under the master key (place
-- auth_keys/<kid>), the public key is plain so verifiers need no master key. The newest key
-- with no retired_at signs; a key verifies until verify_until (null: indefinitely).
--
-- auth_sessions is a refresh-token family, one per login; revoking it ends every refresh
-- token of the login and every access token carrying its id (claim sid).
-- auth_refresh_tokens: each is used once (used_at); presenting a used one revokes its family.
-- auth_revoked_tokens: access-token ids (jti) revoked before their expiry, kept until then.
-- auth_login_failures: failed logins per user name, for lockout across auth processes.

-- +goose Up
ALTER TABLE auth_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE auth_tokens ADD COLUMN last_used_at {{TIMESTAMP}};

CREATE TABLE auth_signing_keys (
    kid                TEXT PRIMARY KEY,
    public_key         TEXT NOT NULL,
    private_key_sealed TEXT NOT NULL,
    created_at         {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    retired_at         {{TIMESTAMP}},
    verify_until       {{TIMESTAMP}}
);

CREATE TABLE auth_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    expires_at    {{TIMESTAMP}} NOT NULL,
    revoked_at    {{TIMESTAMP}},
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);

CREATE TABLE auth_refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at {{TIMESTAMP}} NOT NULL,
    used_at    {{TIMESTAMP}},
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE INDEX auth_refresh_tokens_session_id ON auth_refresh_tokens (session_id);

CREATE TABLE auth_revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at {{TIMESTAMP}} NOT NULL,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

CREATE TABLE auth_login_failures (
    username     TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    window_start {{TIMESTAMP}} NOT NULL,
    locked_until {{TIMESTAMP}}
);

-- +goose Down
DROP TABLE auth_login_failures;
DROP TABLE auth_revoked_tokens;
DROP TABLE auth_refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE auth_signing_keys;
ALTER TABLE auth_tokens DROP COLUMN last_used_at;
ALTER TABLE auth_tokens DROP COLUMN scopes;
ALTER TABLE auth_tokens DROP COLUMN name;
