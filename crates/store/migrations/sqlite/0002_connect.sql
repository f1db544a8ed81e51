-- Connect: apps and their versions, signing keys, end users, their
-- connections and linked accounts, and connect-token revocations.

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    environment_id TEXT NOT NULL REFERENCES environments (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    hostname TEXT NOT NULL,
    access_type TEXT NOT NULL,
    deployed_version_id TEXT,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX apps_slug ON apps (environment_id, slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX apps_hostname ON apps (hostname) WHERE deleted_at IS NULL;
CREATE INDEX apps_environment ON apps (environment_id, id);

CREATE TABLE app_versions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    -- JSON array of requirements, each with its req_ id.
    requirements TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX app_versions_app ON app_versions (app_id, id);

-- RSA signing keys for connect tokens. The private key (PKCS#8) is sealed
-- with the master key named by master_key_id.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_n TEXT NOT NULL,
    public_e TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when a newer key took over signing; published until
    -- retired_at + the longest token lifetime.
    retired_at INTEGER
);

-- An end user exists once a connect token was minted for them or they own
-- a connection; this row ties them to each app they used.
CREATE TABLE end_users (
    environment_id TEXT NOT NULL REFERENCES environments (id),
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (environment_id, user_id, app_id)
);
CREATE INDEX end_users_app ON end_users (app_id, user_id);

-- Connect tokens issued to this user at or before revoked_at (seconds,
-- compared with the token's iat) are refused.
CREATE TABLE end_user_revocations (
    environment_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (environment_id, user_id)
);

-- Individually revoked connect tokens (DELETE /v1/connect/session),
-- kept until they would have expired anyway.
CREATE TABLE revoked_connect_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- Connections (kind 'connection', conn_ ids) and linked action-connector
-- accounts (kind 'account', acct_ ids) of an end user, one per
-- (environment, app, user, requirement name). The config is sealed with the
-- master key named by master_key_id.
CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    environment_id TEXT NOT NULL REFERENCES environments (id),
    app_id TEXT NOT NULL REFERENCES apps (id),
    user_id TEXT NOT NULL,
    requirement_name TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    label TEXT,
    sealed_config BLOB,
    master_key_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX connections_owner ON connections (environment_id, app_id, user_id, requirement_name);
CREATE INDEX connections_user ON connections (environment_id, user_id);
