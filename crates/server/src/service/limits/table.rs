//! This node's rate-limit state: one [`Slot`] per (policy, key), in a
//! bounded cache. Keys are a 16-byte SHA-256 of the policy and the key's
//! parts, so whatever a client sends (a user id, an `X-Forwarded-For`
//! value) costs the same few bytes. The cache holds at most [`CAPACITY`]
//! keys; a key is forgotten once its window has passed without a request
//! (by then its quota is whole again, so forgetting it changes nothing),
//! and under pressure TinyLFU admission keeps keys that are used often, so
//! a flood of one-off keys cannot push out a key that is being limited.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::{Duration, Instant},
};

use aws_lc_rs::digest::{digest, SHA256};
use gatehouse_core::gcra::{self, Outcome, Quota, NANOS_PER_SEC};
use moka::{policy::EvictionPolicy, sync::Cache, Expiry};

/// The most keys one node keeps.
pub const CAPACITY: u64 = 100_000;

/// Nanoseconds on this process's monotonic clock.
pub(super) fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A limited key: SHA-256 of (policy, parts), truncated to 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 16]);

impl Key {
    /// Each part is length-prefixed, so ("a:b", "c") and ("a", "b:c")
    /// differ.
    pub fn of(policy: &str, parts: &[&str]) -> Self {
        let mut input = Vec::with_capacity(64);
        for part in std::iter::once(&policy).chain(parts) {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        let hash = digest(&SHA256, &input);
        let mut key = [0u8; 16];
        key.copy_from_slice(&hash.as_ref()[..16]);
        Self(key)
    }
}

/// One key's state. The TAT is this node's view; with shared limits it is
/// the shared TAT as last read from Redis plus what this node admitted
/// since.
#[derive(Debug)]
pub(super) struct State {
    pub tat: u64,
    /// The quota the key was last charged with.
    pub quota: Quota,
    /// Shared limits: admissions not yet sent to Redis.
    pub pending: u32,
    /// Shared limits: admissions since the last answer from Redis.
    pub since_sync: u32,
    /// Shared limits: when Redis last answered for this key.
    pub synced_at: u64,
    /// Shared limits: waiting in the flush queue.
    pub queued: bool,
}

impl State {
    /// Charges from now on with `quota`, carrying over what is outstanding
    /// when it changed.
    pub fn requota(&mut self, quota: Quota, now: u64) {
        if self.quota != quota {
            self.tat = gcra::rescale(self.quota, quota, self.tat, now);
            self.quota = quota;
        }
    }
}

/// A key's state, and the turn for talking to Redis about it (one call
/// per key at a time, so answers apply in order).
#[derive(Debug)]
pub(super) struct Slot {
    state: Mutex<State>,
    pub turn: Arc<tokio::sync::Mutex<()>>,
    /// How long the key is kept after its last request: its window.
    keep: AtomicU64,
}

impl Slot {
    fn new(quota: Quota) -> Self {
        Self {
            state: Mutex::new(State {
                tat: 0,
                quota,
                pending: 0,
                since_sync: 0,
                synced_at: 0,
                queued: false,
            }),
            turn: Arc::default(),
            keep: AtomicU64::new(keep_for(quota)),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides a request from this node's view alone.
    pub fn decide_locally(&self, quota: Quota, now: u64) -> Outcome {
        let mut s = self.lock();
        s.requota(quota, now);
        let outcome = gcra::check(quota, s.tat, now);
        if outcome.allowed {
            s.tat = outcome.tat;
        }
        outcome
    }
}

/// A key is forgotten this long after its last request: its whole window
/// (when its quota is certainly whole again), plus a second for the shared
/// limits' flush.
fn keep_for(quota: Quota) -> u64 {
    quota.capacity().saturating_add(NANOS_PER_SEC)
}

struct KeepFor;

impl Expiry<Key, Arc<Slot>> for KeepFor {
    fn expire_after_create(&self, _: &Key, slot: &Arc<Slot>, _: Instant) -> Option<Duration> {
        Some(Duration::from_nanos(slot.keep.load(Ordering::Relaxed)))
    }

    fn expire_after_read(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_nanos(slot.keep.load(Ordering::Relaxed)))
    }

    fn expire_after_update(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(Duration::from_nanos(slot.keep.load(Ordering::Relaxed)))
    }
}

/// Every key this node limits.
pub(super) struct Table {
    cache: Cache<Key, Arc<Slot>>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .eviction_policy(EvictionPolicy::tiny_lfu())
                .expire_after(KeepFor)
                .build(),
        }
    }
}

impl Table {
    /// The slot of `key`, made when absent.
    pub fn slot(&self, key: Key, quota: Quota) -> Arc<Slot> {
        let slot = self.cache.get_with(key, || Arc::new(Slot::new(quota)));
        slot.keep.store(keep_for(quota), Ordering::Relaxed);
        slot
    }

    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of different policies or parts differ; the same ones agree.
    #[test]
    fn keys() {
        assert_eq!(Key::of("ip", &["a"]), Key::of("ip", &["a"]));
        assert_ne!(Key::of("ip", &["a"]), Key::of("sign_in", &["a"]));
        assert_ne!(Key::of("x", &["a:b", "c"]), Key::of("x", &["a", "b:c"]));
    }

    /// The table never holds more than its capacity.
    #[test]
    fn bounded() {
        let table = Table::default();
        let quota = Quota::new(10, 60);
        for i in 0..(CAPACITY + 5_000) {
            let key = Key::of("ip", &[&i.to_string()]);
            table.slot(key, quota).decide_locally(quota, now());
        }
        assert!(table.entry_count() <= CAPACITY);
    }
}
