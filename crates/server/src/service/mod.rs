//! The use cases: one function per thing a user of Gatehouse does (issue a
//! key, mint a connect token, submit credentials, erase an end user…).
//! Each takes the [`Services`] handle, an authenticated caller where there
//! is one, and validated input; it enforces the rules, talks to the store
//! and the crypto, and returns rows or an [`ApiError`](crate::error::ApiError).
//! Nothing here knows about HTTP.
//!
//! [`Services`] holds what every use case shares: configuration, storage,
//! the keys, the catalog, the rate limits, and the node-local caches
//! (credentials, connect tokens, app hosts, environments' own limits) with
//! the cross-node invalidation that keeps them honest.

pub mod apps;
pub mod audit;
pub mod authenticate;
pub mod bootstrap;
pub mod connect;
pub mod connect_tokens;
pub mod credentials;
pub mod end_users;
pub mod hosts;
pub mod leaks;
pub mod limits;
pub mod members;
pub mod oauth2;
pub mod outbound;
pub mod principal;
pub mod schema;
pub mod sessions;
pub mod tenancy;
pub mod usage;
pub mod visibility;
pub mod webhooks;

use std::sync::Arc;

use gatehouse_core::TokenPrefixes;
use gatehouse_store::{notify::Invalidation, Store};

use crate::{
    catalog::Catalog,
    config::Config,
    crypto::{signing_keys::KEYS_ANNOUNCEMENT, Keyring, SigningKeys},
};

/// Cheap to clone: one `Arc` around everything the use cases share.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

struct Inner {
    config: Config,
    store: Store,
    prefixes: TokenPrefixes,
    keyring: Keyring,
    signing: SigningKeys,
    catalog: Catalog,
    credentials: principal::CredentialCache,
    connect_tokens: principal::ConnectTokenCache,
    hosts: hosts::HostCache,
    requirements: apps::RequirementsCache,
    usage: usage::UsageRecorder,
    limits: limits::Limiter,
    oauth2_http: oauth2::client::ProviderHttp,
    webhook_worker: webhooks::delivery::Worker,
}

/// What [`Services`] is built from (loaded at start-up).
pub struct Parts {
    pub config: Config,
    pub store: Store,
    pub keyring: Keyring,
    pub signing: SigningKeys,
    pub catalog: Catalog,
    /// The HTTP client for OAuth2 providers.
    pub oauth2_http: oauth2::client::ProviderHttp,
    /// The webhook delivery worker.
    pub webhook_worker: webhooks::delivery::Worker,
    /// The rate limits (SPEC §8).
    pub limits: limits::Limiter,
}

impl Services {
    pub fn new(parts: Parts) -> Self {
        let hosts = hosts::HostCache::new(&parts.config.public_url);
        Self(Arc::new(Inner {
            prefixes: parts.config.token_prefixes(),
            config: parts.config,
            store: parts.store,
            keyring: parts.keyring,
            signing: parts.signing,
            catalog: parts.catalog,
            credentials: principal::CredentialCache::default(),
            connect_tokens: principal::ConnectTokenCache::default(),
            hosts,
            requirements: apps::RequirementsCache::default(),
            usage: usage::UsageRecorder::default(),
            limits: parts.limits,
            oauth2_http: parts.oauth2_http,
            webhook_worker: parts.webhook_worker,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn prefixes(&self) -> &TokenPrefixes {
        &self.0.prefixes
    }

    /// The master key(s) that seal stored secrets.
    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }

    /// Connect-token signing keys.
    pub fn signing(&self) -> &SigningKeys {
        &self.0.signing
    }

    /// Connection types.
    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }

    /// Batched `last_used_at` updates.
    pub fn usage(&self) -> &usage::UsageRecorder {
        &self.0.usage
    }

    /// Calls to OAuth2 providers.
    pub fn oauth2_http(&self) -> &oauth2::client::ProviderHttp {
        &self.0.oauth2_http
    }

    /// This node's webhook delivery worker.
    pub fn webhook_worker(&self) -> &webhooks::delivery::Worker {
        &self.0.webhook_worker
    }

    fn credential_cache(&self) -> &principal::CredentialCache {
        &self.0.credentials
    }

    fn connect_token_cache(&self) -> &principal::ConnectTokenCache {
        &self.0.connect_tokens
    }

    fn requirements_cache(&self) -> &apps::RequirementsCache {
        &self.0.requirements
    }

    fn host_cache(&self) -> &hosts::HostCache {
        &self.0.hosts
    }

    /// How many hosts the routing cache holds (bounded; for tests and
    /// operators).
    pub fn host_cache_entries(&self) -> u64 {
        self.host_cache().entry_count()
    }

    /// Rate limits (SPEC §8).
    pub fn limits(&self) -> &limits::Limiter {
        &self.0.limits
    }

    /// Reloads the environments' own rate limits here at once and on
    /// every other node promptly.
    pub async fn forget_rate_limits(&self) {
        self.limits().reload_overrides(self.store()).await;
        self.announce("limits").await;
    }

    /// Drops a credential from every node's cache (this node at once).
    pub async fn forget_credential(&self, token_hash: &[u8]) {
        self.credential_cache().invalidate(token_hash);
        self.announce(&hex::encode(token_hash)).await;
    }

    /// Drops every cached credential on every node (role and member changes).
    pub async fn forget_all_credentials(&self) {
        self.credential_cache().invalidate_all();
        self.announce("*").await;
    }

    /// Drops cached host lookups and verified connect tokens (which carry
    /// their app) here and on every other node: after an app changes.
    pub async fn forget_apps(&self) {
        self.host_cache().invalidate_all();
        self.connect_token_cache().invalidate_all();
        self.announce("apps").await;
    }

    /// Drops one end user's cached connect tokens here and every cached
    /// connect token on other nodes.
    pub async fn forget_connect_tokens(&self, environment_id: &str, user_id: &str) {
        self.connect_token_cache()
            .invalidate_user(environment_id, user_id);
        self.announce("connect").await;
    }

    /// Drops every cached connect token on every node (an access key that
    /// minted some was revoked).
    pub async fn forget_all_connect_tokens(&self) {
        self.connect_token_cache().invalidate_all();
        self.announce("connect").await;
    }

    /// Drops one cached connect token here and every cached connect token
    /// on other nodes.
    pub async fn forget_connect_token(&self, token_hash: &[u8; 32]) {
        self.connect_token_cache().invalidate(token_hash);
        self.announce("connect").await;
    }

    /// Applies another node's announcement to this node's caches.
    pub fn apply(&self, invalidation: &Invalidation) {
        match invalidation {
            Invalidation::Credential(payload) => match payload.as_str() {
                "apps" => {
                    self.host_cache().invalidate_all();
                    self.connect_token_cache().invalidate_all();
                }
                "connect" => self.connect_token_cache().invalidate_all(),
                "limits" => self.limits().overrides_changed(),
                KEYS_ANNOUNCEMENT => self.signing().announce_rotated(),
                conn if conn.starts_with("conn ") => {
                    if let Some((env, user)) = conn["conn ".len()..].split_once(' ') {
                        self.store().forget_connections(env, user);
                    }
                }
                hex_hash => {
                    if let Ok(hash) = hex::decode(hex_hash) {
                        self.credential_cache().invalidate(&hash);
                    }
                }
            },
            Invalidation::All => {
                self.store().forget_all_connections();
                self.credential_cache().invalidate_all();
                self.host_cache().invalidate_all();
                self.connect_token_cache().invalidate_all();
                self.limits().overrides_changed();
                self.signing().announce_rotated();
            }
        }
    }

    /// Tells the other nodes (PostgreSQL `NOTIFY`); a failure is logged,
    /// and their caches then expire on their own within a minute.
    async fn announce(&self, payload: &str) {
        if let Err(err) = self.store().announce_invalidation(payload).await {
            tracing::warn!(error = %err, "could not announce a cache invalidation");
        }
    }
}
