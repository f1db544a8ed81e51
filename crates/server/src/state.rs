//! Shared application state handed to every handler.

use std::sync::Arc;

use gatehouse_core::TokenPrefixes;
use gatehouse_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::{auth::CredentialCache, config::Config, usage::UsageRecorder};

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
}

impl AppState {
    pub fn new(config: Config, store: Store, metrics: PrometheusHandle) -> Self {
        let prefixes = config.token_prefixes();
        Self(Arc::new(Inner {
            config,
            store,
            prefixes,
            credentials: CredentialCache::new(),
            usage: UsageRecorder::default(),
            metrics,
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
}
