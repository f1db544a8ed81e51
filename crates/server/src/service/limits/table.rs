//! This node's rate-limit state: one [`Slot`] per (policy, key), in a
//! bounded cache. Keys are a 16-byte SHA-256 of the policy and the key's
//! parts, so whatever a client sends (a user id, an `X-Forwarded-For`
//! value) costs the same few bytes. The cache holds at most [`CAPACITY`]
//! keys; a key is forgotten a second after its quota is whole again (its
//! TAT has passed: forgetting it then changes nothing), which for a key
//! used once is about a second, not its whole window, and under pressure
//! TinyLFU admission keeps keys that are used often, so a flood of one-off
//! keys cannot push out a key that is being limited.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
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
    /// When the table's entry expires, as set at its last read (this
    /// process's monotonic clock, ns).
    expires_at: AtomicU64,
    /// Set once the table has dropped the entry.
    evicted: AtomicBool,
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
            expires_at: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
        }
    }

    /// How long to keep the key from `now`: until its TAT has passed
    /// after one more admission, plus `grace`.
    fn keep(&self, now: u64, grace: u64) -> Duration {
        let s = self.lock();
        let keep = keep_for(s.quota, s.tat, now, grace);
        self.expires_at
            .store(now.saturating_add(keep), Ordering::Release);
        Duration::from_nanos(keep)
    }

    /// Whether the table's entry is sure to outlive a request decided at
    /// `now`: still held, and expiring at least half of `grace` after
    /// the TAT that request may leave.
    fn outlives(&self, quota: Quota, now: u64, grace: u64) -> bool {
        if self.evicted.load(Ordering::Acquire) {
            return false;
        }
        let tat = self.lock().tat;
        let needed = tat
            .max(now)
            .saturating_add(quota.period())
            .saturating_add(grace / 2);
        self.expires_at.load(Ordering::Acquire) >= needed
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

/// What a key is kept for past its TAT with shared limits: they flush
/// what a node admitted every 25 ms, and a key waiting for that stays, and
/// a key Redis refused is read again once its view is a second old.
pub(super) const SHARED_GRACE: u64 = NANOS_PER_SEC;
/// What a key is kept for past its TAT on a node deciding alone: only
/// for the held slots' margin (they read the table again every half of
/// it), since a key whose TAT has passed is a whole quota either way.
pub(super) const LOCAL_GRACE: u64 = NANOS_PER_SEC / 4;

/// How long from `now` a key with `tat` is kept: a request read now may
/// push its TAT one emission interval further, so the key lives until that
/// TAT has passed, plus `grace`. A key with nothing outstanding goes
/// `grace` after its last request, one that is being limited stays for as
/// long as its quota is not whole.
fn keep_for(quota: Quota, tat: u64, now: u64, grace: u64) -> u64 {
    tat.saturating_sub(now)
        .saturating_add(quota.period())
        .saturating_add(grace)
}

/// The table's expiry: [`keep_for`] at each read.
struct KeepFor {
    grace: u64,
}

impl Expiry<Key, Arc<Slot>> for KeepFor {
    fn expire_after_create(&self, _: &Key, slot: &Arc<Slot>, _: Instant) -> Option<Duration> {
        Some(slot.keep(now(), self.grace))
    }

    fn expire_after_read(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        Some(slot.keep(now(), self.grace))
    }

    fn expire_after_update(
        &self,
        _: &Key,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.keep(now(), self.grace))
    }
}

/// A cached caller's slot for one of its keys, kept with the caller: its
/// requests decide on it without a lookup in the table while the table's
/// entry is sure to outlive them, and read the table (which keeps the entry
/// alive, and gives back whatever slot the table holds) otherwise, about
/// every half second for a key in use.
#[derive(Debug, Default)]
pub struct HeldSlot(Mutex<Option<Arc<Slot>>>);

impl Clone for HeldSlot {
    fn clone(&self) -> Self {
        Self(Mutex::new(
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ))
    }
}

/// Every key this node limits.
pub(super) struct Table {
    cache: Cache<Key, Arc<Slot>>,
    /// What a key is kept for past its TAT ([`SHARED_GRACE`] or
    /// [`LOCAL_GRACE`]).
    grace: u64,
}

impl Table {
    pub fn new(grace: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .eviction_policy(EvictionPolicy::tiny_lfu())
                .expire_after(KeepFor { grace })
                .eviction_listener(|_, slot: Arc<Slot>, _| {
                    slot.evicted.store(true, Ordering::Release);
                })
                .build(),
            grace,
        }
    }

    /// The slot of `key`, made when absent.
    pub fn slot(&self, key: Key, quota: Quota) -> Arc<Slot> {
        self.cache.get_with(key, || Arc::new(Slot::new(quota)))
    }

    /// The slot of `key` for a caller that keeps it in `held`.
    pub fn held_slot(&self, key: Key, quota: Quota, held: &HeldSlot, now: u64) -> Arc<Slot> {
        let mut held = held.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = held.as_ref().filter(|s| s.outlives(quota, now, self.grace)) {
            return slot.clone();
        }
        let slot = self.slot(key, quota);
        *held = Some(slot.clone());
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

    /// A key is kept until its quota is whole again, however long its
    /// window, plus the grace: a key used once about a second (shared
    /// limits) or a quarter of one (alone), a limited one as long as it
    /// has anything outstanding.
    #[test]
    fn kept_until_whole() {
        for grace in [SHARED_GRACE, LOCAL_GRACE] {
            let quota = Quota::new(2, 60);
            let slot = Slot::new(quota);
            let t0 = now() + 5 * NANOS_PER_SEC;
            let keep = |slot: &Slot, at| slot.keep(at, grace);
            assert_eq!(
                keep(&slot, t0),
                Duration::from_nanos(quota.period() + grace)
            );
            assert!(slot.decide_locally(quota, t0).allowed);
            // One admission: 30 s outstanding, plus one more a read may add.
            assert_eq!(
                keep(&slot, t0),
                Duration::from_nanos(2 * quota.period() + grace)
            );
            assert!(slot.decide_locally(quota, t0).allowed);
            assert!(!slot.decide_locally(quota, t0).allowed);
            assert_eq!(
                keep(&slot, t0),
                Duration::from_nanos(3 * quota.period() + grace)
            );
            // Once the TAT has passed, only the grace and one interval remain.
            let later = t0 + 2 * quota.period() + 1;
            assert_eq!(
                keep(&slot, later),
                Duration::from_nanos(quota.period() + grace)
            );
            // A key of a fast quota is not kept for its window.
            let fast = Quota::new(1_500, 60);
            let used = Slot::new(fast);
            assert!(used.decide_locally(fast, t0).allowed);
            assert!(keep(&used, t0) < Duration::from_nanos(grace) + Duration::from_millis(100));
        }
    }

    /// A held slot is used without the table while the table's entry is
    /// sure to outlive the request, read again from the table otherwise,
    /// and replaced once the table dropped it.
    #[test]
    fn held_slots() {
        let table = Table::new(SHARED_GRACE);
        let quota = Quota::new(1_500, 60);
        let key = Key::of("credential", &["key_1"]);
        let held = HeldSlot::default();
        let t0 = now();
        let first = table.held_slot(key, quota, &held, t0);
        assert!(first.decide_locally(quota, t0).allowed);
        // Well within the entry's life: the same slot, state and all.
        let again = table.held_slot(key, quota, &held, t0 + 100_000_000);
        assert!(Arc::ptr_eq(&first, &again));
        // Past half the grace the table is read again: its entry (the
        // same slot) gets a later expiry.
        let late = t0 + 700_000_000;
        let expires = first.expires_at.load(Ordering::Acquire);
        let read = table.held_slot(key, quota, &held, late);
        assert!(Arc::ptr_eq(&first, &read));
        assert!(first.expires_at.load(Ordering::Acquire) > expires);
        // Dropped by the table: the next request takes the table's slot.
        table.cache.invalidate(&key);
        table.cache.run_pending_tasks();
        assert!(first.evicted.load(Ordering::Acquire));
        let fresh = table.held_slot(key, quota, &held, late);
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert!(Arc::ptr_eq(&fresh, &table.slot(key, quota)));
    }

    /// The table never holds more than its capacity.
    #[test]
    fn bounded() {
        let table = Table::new(SHARED_GRACE);
        let quota = Quota::new(10, 60);
        for i in 0..(CAPACITY + 5_000) {
            let key = Key::of("ip", &[&i.to_string()]);
            table.slot(key, quota).decide_locally(quota, now());
        }
        assert!(table.entry_count() <= CAPACITY);
    }
}
