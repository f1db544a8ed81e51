//! Shared application state handed to every handler.

use std::sync::Arc;

use gatehouse_core::TokenPrefixes;
use gatehouse_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::http::login::SignInLimiter;
use crate::{
    auth::CredentialCache, catalog::Catalog, config::Config, connect_auth::ConnectCache,
    crypto::Keyring, http::surface::AppHosts, signing::SigningKeys, usage::UsageRecorder,
};

/// Cheap to clone: one `Arc` around everything.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    store: Store,
    prefixes: TokenPrefixes,
    credentials: CredentialCache,
    usage: UsageRecorder,
    metrics: PrometheusHandle,
    keyring: Keyring,
    signing: SigningKeys,
    catalog: Catalog,
    app_hosts: AppHosts,
    connect_cache: ConnectCache,
    sign_in_limiter: SignInLimiter,
}

/// What the state is built from; loaded by [`crate::App::build`].
pub struct Parts {
    pub config: Config,
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub keyring: Keyring,
    pub signing: SigningKeys,
    pub catalog: Catalog,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        let prefixes = parts.config.token_prefixes();
        Self(Arc::new(Inner {
            config: parts.config,
            store: parts.store,
            prefixes,
            credentials: CredentialCache::new(),
            usage: UsageRecorder::default(),
            metrics: parts.metrics,
            keyring: parts.keyring,
            signing: parts.signing,
            catalog: parts.catalog,
            app_hosts: AppHosts::default(),
            connect_cache: ConnectCache::default(),
            sign_in_limiter: SignInLimiter::default(),
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

    pub fn credentials(&self) -> &CredentialCache {
        &self.0.credentials
    }

    pub fn usage(&self) -> &UsageRecorder {
        &self.0.usage
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.0.metrics
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

    pub fn app_hosts(&self) -> &AppHosts {
        &self.0.app_hosts
    }

    pub fn connect_cache(&self) -> &ConnectCache {
        &self.0.connect_cache
    }

    /// Per-IP sign-in attempts.
    pub fn sign_in_limiter(&self) -> &SignInLimiter {
        &self.0.sign_in_limiter
    }
}
