-- People, their sessions, invitations, the audit log and sign-in throttling.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    -- argon2id, PHC string format.
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- A member is 'invited' until a user signed in with that email accepts; then 'active'.
-- Members made by `bootstrap --owner-email` are active before any user exists; the user who
-- signs up with that email becomes them.
ALTER TABLE members ADD COLUMN user_id TEXT REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE members ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE members ADD COLUMN accepted_at BIGINT;
CREATE INDEX members_by_user ON members (user_id);
CREATE INDEX members_by_email ON members (email);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    actor_label TEXT,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    request_id TEXT,
    created_at BIGINT NOT NULL,
    -- JSON; never a secret.
    data TEXT NOT NULL
);
CREATE INDEX audit_events_by_workspace ON audit_events (workspace_id, id);
CREATE INDEX audit_events_by_time ON audit_events (workspace_id, created_at);

-- Failed sign-ins, by `email:<address>` and `ip:<address>`, for throttling.
CREATE TABLE signin_failures (
    throttle_key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX signin_failures_by_key ON signin_failures (throttle_key, at);

-- Set when the expiry sweep has recorded `token.expired`, so it is recorded once.
ALTER TABLE tokens ADD COLUMN expiry_recorded_at BIGINT;
CREATE INDEX tokens_by_expiry ON tokens (expires_at);
