//! The end users' connections, kept in memory between changes.
//!
//! Connect-token requests read an end user's connections on every call;
//! they change only when this store writes them. So every write here drops
//! the user's entry (and bumps an epoch, so a read that raced the write
//! does not put the old rows back), and on PostgreSQL a trigger announces
//! each changed row to every node (`conn <environment> <user>` on
//! [`crate::notify::CHANNEL`]), whose listener calls [`Store::forget_connections`].
//! Entries are bounded by their bytes and expire after a minute in any case.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::connect::ConnectionRow;

/// `<environment id>\0<user id>` (neither holds a NUL: ids are ours, and
/// user ids have no control characters).
type Key = String;

fn key(environment_id: &str, user_id: &str) -> Key {
    let mut k = String::with_capacity(environment_id.len() + 1 + user_id.len());
    k.push_str(environment_id);
    k.push('\0');
    k.push_str(user_id);
    k
}

pub(crate) struct ConnectionsCache {
    cache: moka::sync::Cache<Key, Arc<Vec<ConnectionRow>>>,
    /// Bumped by every invalidation.
    epoch: AtomicU64,
}

impl std::fmt::Debug for ConnectionsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionsCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// The most the cached rows may weigh, roughly in bytes.
pub const MAX_BYTES: u64 = 8 << 20;
/// How long an entry lives without a change: the bound on staleness if an
/// announcement from another node were lost.
pub const TTL: Duration = Duration::from_secs(60);

impl Default for ConnectionsCache {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|k: &Key, rows: &Arc<Vec<ConnectionRow>>| {
                    let bytes = k.len() + 200 + rows.iter().map(row_bytes).sum::<usize>();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_live(TTL)
                .build(),
            epoch: AtomicU64::new(0),
        }
    }
}

/// Roughly what a row holds.
fn row_bytes(r: &ConnectionRow) -> usize {
    std::mem::size_of::<ConnectionRow>() + r.heap_bytes()
}

impl ConnectionsCache {
    pub(crate) fn get(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> Option<Arc<Vec<ConnectionRow>>> {
        self.cache.get(&key(environment_id, user_id))
    }

    /// The epoch to pass to [`Self::insert`], taken before reading.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `rows` unless something was invalidated since `epoch`.
    pub(crate) fn insert(
        &self,
        epoch: u64,
        environment_id: &str,
        user_id: &str,
        rows: Arc<Vec<ConnectionRow>>,
    ) {
        if self.epoch() == epoch {
            let k = key(environment_id, user_id);
            self.cache.insert(k.clone(), rows);
            // An invalidation between the check and the insert: undo it.
            if self.epoch() != epoch {
                self.cache.invalidate(&k);
            }
        }
    }

    pub(crate) fn forget(&self, environment_id: &str, user_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(&key(environment_id, user_id));
    }

    pub(crate) fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows read before an invalidation are not kept after it, and a
    /// change drops the user's entry but no one else's.
    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = ConnectionsCache::default();
        let before = cache.epoch();
        cache.forget("env_1", "ada");
        cache.insert(before, "env_1", "ada", Arc::new(Vec::new()));
        assert!(cache.get("env_1", "ada").is_none());

        let now = cache.epoch();
        cache.insert(now, "env_1", "ada", Arc::new(Vec::new()));
        cache.insert(now, "env_1", "bob", Arc::new(Vec::new()));
        assert!(cache.get("env_1", "ada").is_some());
        cache.forget("env_1", "ada");
        assert!(cache.get("env_1", "ada").is_none());
        assert!(cache.get("env_1", "bob").is_some());
        assert!(cache.get("env_2", "bob").is_none());
        cache.forget_all();
        assert!(cache.get("env_1", "bob").is_none());
    }
}
