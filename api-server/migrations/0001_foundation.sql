-- Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Timestamps are BIGINT microseconds since the Unix epoch (UTC); ids are UUIDv7 text.

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL,
    -- NULL means new tokens never expire by default.
    default_token_expiry_days BIGINT,
    audit_retention_days BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (workspace_id, email)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- A personal key dies with its member.
    member_id TEXT REFERENCES members(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- JSON array of scope names.
    scopes TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    rotated_at BIGINT,
    rotation BIGINT NOT NULL,
    last_used_at BIGINT,
    created_by TEXT NOT NULL
);
CREATE INDEX tokens_by_workspace ON tokens (workspace_id, id);

-- Every secret a token has had. The current one has valid_until NULL; a rotated one keeps
-- working until valid_until (its grace period), which lets verify say "rotated" afterwards.
CREATE TABLE token_secrets (
    secret_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    valid_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX token_secrets_by_token ON token_secrets (token_id);

-- Responses of POSTs sent with an Idempotency-Key, secrets removed.
CREATE TABLE idempotency_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, principal_id, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
