//! `last_used_at` without a database write per request: uses are noted in
//! memory and written in one batch every `last_used_flush_seconds` (and at
//! shutdown).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use gatehouse_store::Store;

/// Credential id → the latest time it was used, since the last flush.
#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, i64>>,
}

impl UsageRecorder {
    /// Notes a use of `id` at `at` (Unix ms).
    pub fn record(&self, id: &str, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(id.to_string(), at);
            }
        }
    }

    /// The newest unflushed use of `id`, so responses are never staler than
    /// what this node knows.
    pub fn pending(&self, id: &str) -> Option<i64> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(id).copied()
    }

    /// Writes every pending use; on failure they are put back for the next try.
    pub async fn flush(&self, store: &Store) {
        let batch: Vec<(String, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *pending).into_iter().collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(err) = store.touch_credentials(&batch).await {
            tracing::warn!(error = %err, count = batch.len(), "could not write last_used_at; will retry");
            for (id, at) in batch {
                self.record(&id, at);
            }
        }
    }

    /// Flushes every `every` until the task is dropped.
    pub async fn run(&self, store: Store, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.flush(&store).await;
        }
    }
}
