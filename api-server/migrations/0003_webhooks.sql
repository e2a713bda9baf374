-- Webhook endpoints, the events sent to them, and one delivery per (event, endpoint).

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT,
    -- JSON array of event types.
    event_types TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    disabled_reason TEXT,
    -- The HMAC key must be usable to sign, so it is stored, unlike credentials (hashed).
    secret TEXT NOT NULL,
    -- After a rotation: the new secret, which takes over signing at pending_secret_at.
    pending_secret TEXT,
    pending_secret_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, id);

-- The exact body delivered, so every attempt and redelivery sends the same bytes.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    -- Deliveries with the same key go to an endpoint in order (the token id for token events).
    ordering_key TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT,
    -- A replica holds a delivery while attempting it; after this time another may take it.
    lease_until BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    last_latency_ms BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_by_order ON webhook_deliveries (endpoint_id, ordering_key, status, id);
