-- Webhooks with a durable outbox (SPEC §9), per-environment rate limits
-- (SPEC §8), and the origins an app's redirect URLs may point to.

-- A webhook of an environment. The signing secret is sealed with the
-- master key named by master_key_id (AAD: the webhook id). After a
-- rotation the previous secret (sealed the same way) also signs until
-- previous_secret_until.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret_sealed BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    previous_secret_sealed BLOB,
    previous_master_key_id TEXT,
    previous_secret_until BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    failing_since BIGINT,
    disabled_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX webhooks_environment ON webhooks (environment_id, id);

-- The outbox: one row per event, written in the transaction of the change
-- it reports, fanned out to the environment's webhooks by a worker.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    fanned_out_at BIGINT
);
CREATE INDEX webhook_events_pending ON webhook_events (fanned_out_at, created_at);

-- One event to one webhook: its attempts so far and the next one.
CREATE TABLE webhook_messages (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id),
    event_id TEXT NOT NULL REFERENCES webhook_events (id),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    claimed_by TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX webhook_messages_once ON webhook_messages (webhook_id, event_id);
CREATE INDEX webhook_messages_due ON webhook_messages (status, next_attempt_at);

-- Every delivery attempt, never updated.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id),
    message_id TEXT NOT NULL REFERENCES webhook_messages (id),
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- An environment's own `environment` rate-limit policy (none: the default).
ALTER TABLE environments ADD COLUMN rate_limit INTEGER;
ALTER TABLE environments ADD COLUMN rate_limit_window INTEGER;

CREATE INDEX audit_events_at ON audit_events (at);

-- Space-separated origins the hosted page may send an app's users back to
-- (none: any https URL).
ALTER TABLE apps ADD COLUMN allowed_redirect_origins TEXT;
