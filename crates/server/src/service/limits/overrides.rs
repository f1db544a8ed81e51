//! The `environment` limits environments set for themselves
//! (`PATCH /v1/environments/{id}`), held in memory so no request reads
//! them from the store. They are reloaded at start-up, at once after a
//! change on this node, promptly after another node announces one, and
//! every [`RELOAD_EVERY`] in any case.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use gatehouse_store::Store;
use tokio::sync::Notify;

use crate::config::limits::Rule;

/// The longest an override can be stale on a node that missed an
/// announcement.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Overrides {
    rules: RwLock<Arc<HashMap<String, Rule>>>,
    changed: Notify,
}

impl Overrides {
    pub fn get(&self, environment_id: &str) -> Option<Rule> {
        self.rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(environment_id)
            .copied()
    }

    pub fn changed(&self) {
        self.changed.notify_one();
    }

    /// Reads every override; on a store error the old ones stay.
    pub async fn reload(&self, store: &Store) {
        match store.environment_rate_limits().await {
            Ok(rows) => {
                let rules = rows
                    .into_iter()
                    .filter_map(|(id, limit, window)| {
                        let rule = Rule {
                            limit: u32::try_from(limit).ok()?,
                            window_seconds: u32::try_from(window).ok()?,
                        };
                        rule.check("environment").ok().map(|_| (id, rule))
                    })
                    .collect();
                *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not reload the environments' rate limits");
            }
        }
    }

    pub async fn run(&self, store: &Store) {
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
            }
            self.reload(store).await;
        }
    }
}
