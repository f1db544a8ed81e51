-- OAuth2 (SPEC §5.1, §6): providers configured through the API, pending
-- authorizations, and what a connection needs to be refreshed.

-- Providers created with POST /v1/oauth2-providers (those from
-- gatehouse.toml are not stored). The client secret is sealed with the
-- master key named by master_key_id (AAD: the provider id).
CREATE TABLE oauth2_providers (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    name TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    preset TEXT,
    authorize_url TEXT,
    token_url TEXT,
    userinfo_url TEXT,
    issuer TEXT,
    discovery_url TEXT,
    client_id TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    extra_authorize_params TEXT NOT NULL,
    client_auth TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX oauth2_providers_target ON oauth2_providers (environment_id, target_kind, target) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX oauth2_providers_name ON oauth2_providers (environment_id, name) WHERE deleted_at IS NULL;

-- Pending authorizations: found by the SHA-256 of their state, used once,
-- for ten minutes. The PKCE verifier is sealed (AAD: the flow id).
CREATE TABLE oauth2_flows (
    id TEXT PRIMARY KEY,
    state_hash BLOB NOT NULL UNIQUE,
    environment_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    requirement_id TEXT NOT NULL,
    requirement_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    verifier_sealed BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
        consumed_at BIGINT,
    -- Started with a connect token minted without an access key: may only
    -- fill a requirement that has no active connection.
    add_only BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX oauth2_flows_expiry ON oauth2_flows (expires_at);

-- What OAuth2 connections and accounts need for refreshing: the provider
-- that issued them, when the access token expires, whether a refresh token
-- is sealed in the config, when to try next, a lease that keeps one node
-- refreshing at a time, and the last error (never a provider's raw answer).
ALTER TABLE connections ADD COLUMN provider_ref TEXT;
ALTER TABLE connections ADD COLUMN access_expires_at BIGINT;
ALTER TABLE connections ADD COLUMN has_refresh_token BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE connections ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE connections ADD COLUMN refresh_lease_until BIGINT;
ALTER TABLE connections ADD COLUMN refresh_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_error TEXT;
CREATE INDEX connections_refresh ON connections (next_refresh_at);
