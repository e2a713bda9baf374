-- Issue 14: one counter, bumped in the transaction of every change to a credential (a
-- revocation, rotation, regeneration, deletion, a member's role, a workspace's slug). Each
-- replica compares it with the value its credential cache was filled under.

CREATE TABLE credential_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);

INSERT INTO credential_epoch (id, version) VALUES (1, 0);
