//! `last_used_at` without a database write per request: uses are noted in
//! memory and written in one batch every `last_used_flush_seconds` (and at
//! shutdown), or as soon as [`MAX_PENDING`] credentials are waiting, so
//! the memory they take stays small however many keys are in use.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use gatehouse_store::Store;
use tokio::sync::Notify;

/// The most credentials whose use waits in memory: reaching it starts a
/// flush (about a megabyte; a write of a few multi-row statements).
pub const MAX_PENDING: usize = 8_192;

/// Credential id → the latest time it was used, since the last flush.
#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<String, i64>>,
    /// Woken when [`MAX_PENDING`] uses wait.
    full: Notify,
}

impl UsageRecorder {
    /// Notes a use of `id` at `at` (Unix ms).
    pub fn record(&self, id: &str, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(id.to_string(), at);
                if pending.len() == MAX_PENDING {
                    self.full.notify_one();
                }
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
            // Put back without waking the flusher: a failing database is
            // tried again at the next tick, not at once in a loop.
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (id, at) in batch {
                let t = pending.entry(id).or_insert(at);
                *t = (*t).max(at);
            }
        }
    }

    /// Flushes every `every`, and whenever [`MAX_PENDING`] uses wait,
    /// until the task is dropped.
    pub async fn run(&self, store: Store, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.full.notified() => {}
            }
            self.flush(&store).await;
        }
    }

    /// Uses waiting to be written.
    pub fn pending_count(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
