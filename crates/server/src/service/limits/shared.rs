//! Rate limits shared by every node through Redis (`redis_url`).
//!
//! Redis holds the authoritative TAT of each key (`gatehouse:rl:<hex>`),
//! in microseconds on Redis's own clock; a script adds admissions to it
//! and answers how far ahead of Redis's now it is, so the nodes' clocks
//! never matter. Each node decides on its own view (the TAT Redis last
//! answered plus its own admissions since) and sends its admissions in
//! batches every [`FLUSH_EVERY`]. Between two answers a node admits at most
//! `A = floor(0.1·limit / nodes)` requests of a key; the next one waits for
//! Redis to check it (with `A = 0`, every request of that key does). So at
//! most `nodes·A ≤ 10 %` of a limit is admitted on a stale view. The node
//! count comes from a heartbeat set (`gatehouse:rl:nodes`).
//!
//! Every call has a timeout. When Redis fails, the node decides from its
//! own view alone (local limits), counts the failure in
//! `gatehouse_rate_limit_redis_failures_total`, logs at most once a
//! minute, and shares again once a heartbeat succeeds.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, RwLock,
    },
    time::{Duration, Instant},
};

use gatehouse_core::gcra::{self, Outcome, Quota};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::table::{now, Key, Slot};

/// How often admissions are sent to Redis.
pub const FLUSH_EVERY: Duration = Duration::from_millis(25);
/// How often a node says it is alive (and learns how many there are).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A node silent this long no longer counts.
const NODE_GONE_AFTER_MS: u64 = 5_000;
/// The longest any Redis call may take before the node decides alone.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// A key this node is refusing is re-read from Redis at most this often.
const REFRESH_REFUSED_AFTER: u64 = 1_000_000_000;
/// Keys per script call.
const BATCH: usize = 256;
/// Failures are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

const PREFIX: &str = "gatehouse:rl:";
const NODES_KEY: &str = "gatehouse:rl:nodes";

/// Adds admissions to each key's TAT and, when asked, tries one more on
/// the first key. ARGV[1]: "1" to try; then for each key its admissions,
/// `T` and the capacity `limit·T` in nanoseconds. A key is a hash of its
/// TAT (`t`, µs) and the `T` it was last charged with (`p`, ns), so a
/// changed quota carries over what is outstanding (as `gcra::rescale`).
/// Returns {1 when the try was admitted else 0, then for each key its TAT
/// minus now in µs}.
const CHARGE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {0}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local count = tonumber(ARGV[base + 1])
  local period_ns = tonumber(ARGV[base + 2])
  local period = period_ns / 1000
  local capacity = tonumber(ARGV[base + 3]) / 1000
  local stored = redis.call('HMGET', key, 't', 'p')
  local tat = tonumber(stored[1]) or 0
  local was = tonumber(stored[2])
  if tat < now then
    tat = now
  elseif was and was ~= period_ns then
    tat = now + math.min((tat - now) * period_ns / was, capacity)
  end
  tat = tat + count * period
  if i == 1 and ARGV[1] == '1' and tat + period - now <= capacity then
    tat = tat + period
    out[1] = 1
  end
  tat = math.ceil(tat)
  if tat > now then
    redis.call('HSET', key, 't', string.format('%d', tat), 'p', ARGV[base + 2])
    redis.call('PEXPIRE', key, math.ceil((tat - now) / 1000) + 1)
  end
  out[#out + 1] = tat - now
end
return out
";

/// Records this node as alive, forgets silent ones, and counts them.
/// KEYS[1]: the node set; ARGV[1]: this node; ARGV[2]: ms of silence
/// after which a node is gone.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - gone)
redis.call('PEXPIRE', KEYS[1], gone * 2)
return redis.call('ZCARD', KEYS[1])
";

/// Redis's answer to one script call.
struct Answer {
    admitted: bool,
    /// Per key: nanoseconds its TAT is ahead of now.
    ahead: Vec<u64>,
}

pub(super) struct Shared {
    client: redis::Client,
    connection: RwLock<Option<ConnectionManager>>,
    connected: AtomicBool,
    node_id: String,
    nodes: AtomicU32,
    charge: redis::Script,
    heartbeat: redis::Script,
    queue: Mutex<Vec<(Key, Arc<Slot>)>>,
    warned_at: Mutex<Option<Instant>>,
}

impl Shared {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?;
        metrics::gauge!("gatehouse_rate_limit_redis_connected").set(0.0);
        Ok(Self {
            client,
            connection: RwLock::new(None),
            connected: AtomicBool::new(false),
            node_id: ulid::Ulid::new().to_string().to_ascii_lowercase(),
            nodes: AtomicU32::new(1),
            charge: redis::Script::new(CHARGE),
            heartbeat: redis::Script::new(HEARTBEAT),
            queue: Mutex::new(Vec::new()),
            warned_at: Mutex::new(None),
        })
    }

    /// Redis answered the last call.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed).max(1)
    }

    /// `A`: what this node may admit of a key between two answers.
    fn allowance(&self, quota: Quota) -> u32 {
        quota.limit() / (10 * self.nodes())
    }

    /// Decides a request: from this node's view when it can, else after
    /// asking Redis.
    pub async fn decide(&self, key: Key, slot: &Arc<Slot>, quota: Quota) -> Outcome {
        if let Some(outcome) = self.decide_here(key, slot, quota) {
            return outcome;
        }
        let _turn = slot.turn.lock().await;
        // A flush may have answered while this request waited.
        if let Some(outcome) = self.decide_here(key, slot, quota) {
            return outcome;
        }
        self.ask(key, slot, quota).await
    }

    /// A refusal, or an admission within the allowance; `None` when Redis
    /// must decide.
    fn decide_here(&self, key: Key, slot: &Arc<Slot>, quota: Quota) -> Option<Outcome> {
        let now = now();
        let mut s = slot.lock();
        s.requota(quota, now);
        let outcome = gcra::check(quota, s.tat, now);
        if !outcome.allowed {
            // Refused on this node's view: re-read the key soon, so what
            // other nodes did since shows in the next answer.
            let stale = now.saturating_sub(s.synced_at) > REFRESH_REFUSED_AFTER;
            if stale && !s.queued {
                s.queued = true;
                drop(s);
                self.enqueue(key, slot);
            }
            return Some(outcome);
        }
        if s.since_sync >= self.allowance(quota) {
            return None;
        }
        s.tat = outcome.tat;
        s.pending += 1;
        s.since_sync += 1;
        if !s.queued {
            s.queued = true;
            drop(s);
            self.enqueue(key, slot);
        }
        Some(outcome)
    }

    /// Sends what this node admitted and lets Redis decide this request.
    async fn ask(&self, key: Key, slot: &Arc<Slot>, quota: Quota) -> Outcome {
        let count = std::mem::take(&mut slot.lock().pending);
        match self.call(&[(key, count, quota)], true).await {
            Some(answer) => {
                let now = now();
                let mut s = slot.lock();
                apply(&mut s, answer.ahead[0], now);
                gcra::view(quota, s.tat, now, answer.admitted)
            }
            None => slot.decide_locally(quota, now()),
        }
    }

    fn enqueue(&self, key: Key, slot: &Arc<Slot>) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, slot.clone()));
    }

    /// Heartbeat and flushes, until the process stops.
    pub async fn run(&self) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat_at = Instant::now();
        loop {
            tick.tick().await;
            if Instant::now() >= beat_at {
                self.beat().await;
                beat_at = Instant::now() + HEARTBEAT_EVERY;
            }
            self.flush().await;
        }
    }

    /// Sends every queued key's admissions (or, for a refused key, none)
    /// and takes Redis's TAT as the new view. Keys whose turn is taken by
    /// a request asking Redis wait for the next flush.
    async fn flush(&self) {
        let queued = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        if queued.is_empty() {
            return;
        }
        let connected = self.connected();
        let mut batch = Vec::with_capacity(queued.len());
        for (key, slot) in queued {
            let Ok(turn) = slot.turn.clone().try_lock_owned() else {
                self.enqueue(key, &slot);
                continue;
            };
            let (count, quota) = {
                let mut s = slot.lock();
                s.queued = false;
                let count = std::mem::take(&mut s.pending);
                if !connected {
                    // Deciding alone: what was admitted meanwhile is not
                    // sent later, or Redis would count it against a window
                    // that has passed.
                    s.since_sync = 0;
                    continue;
                }
                (count, s.quota)
            };
            batch.push((key, slot, turn, count, quota));
        }
        for chunk in batch.chunks(BATCH) {
            let items: Vec<_> = chunk.iter().map(|(k, _, _, c, q)| (*k, *c, *q)).collect();
            let answer = self.call(&items, false).await;
            let now = now();
            for (i, (_, slot, _, _, _)) in chunk.iter().enumerate() {
                let mut s = slot.lock();
                match &answer {
                    Some(a) => apply(&mut s, a.ahead[i], now),
                    None => s.since_sync = 0,
                }
            }
        }
    }

    /// One script call; `None` (counted and logged) when Redis fails.
    async fn call(&self, items: &[(Key, u32, Quota)], try_first: bool) -> Option<Answer> {
        let mut connection = self.connection()?;
        let mut invocation = self.charge.prepare_invoke();
        invocation.arg(if try_first { "1" } else { "0" });
        for (key, count, quota) in items {
            invocation
                .key(format!("{PREFIX}{}", hex::encode(key.0)))
                .arg(*count)
                .arg(quota.period())
                .arg(quota.capacity());
        }
        let reply = tokio::time::timeout(
            CALL_TIMEOUT,
            invocation.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await;
        match reply {
            Ok(Ok(values)) if values.len() == items.len() + 1 => Some(Answer {
                admitted: values[0] == 1,
                ahead: values[1..]
                    .iter()
                    .map(|us| u64::try_from(*us).unwrap_or(0).saturating_mul(1000))
                    .collect(),
            }),
            Ok(Ok(_)) => self.failed("an unexpected answer to the rate-limit script"),
            Ok(Err(err)) => self.failed(&err.to_string()),
            Err(_) => self.failed("timed out"),
        }
    }

    fn connection(&self) -> Option<ConnectionManager> {
        self.connection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Connects when needed, then records this node as alive and learns
    /// how many nodes share the limits.
    async fn beat(&self) {
        let mut connection = match self.connection() {
            Some(c) => c,
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(CALL_TIMEOUT)
                    .set_number_of_retries(1);
                let made = tokio::time::timeout(
                    CONNECT_TIMEOUT * 4,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await;
                match made {
                    Ok(Ok(c)) => {
                        *self.connection.write().unwrap_or_else(|e| e.into_inner()) =
                            Some(c.clone());
                        c
                    }
                    Ok(Err(err)) => return self.fail(&err.to_string()),
                    Err(_) => return self.fail("connecting timed out"),
                }
            }
        };
        let counted = tokio::time::timeout(
            CALL_TIMEOUT,
            self.heartbeat
                .key(NODES_KEY)
                .arg(&self.node_id)
                .arg(NODE_GONE_AFTER_MS)
                .invoke_async::<u32>(&mut connection),
        )
        .await;
        match counted {
            Ok(Ok(nodes)) => {
                self.nodes.store(nodes.max(1), Ordering::Relaxed);
                metrics::gauge!("gatehouse_rate_limit_nodes").set(f64::from(nodes.max(1)));
                if !self.connected.swap(true, Ordering::Relaxed) {
                    metrics::gauge!("gatehouse_rate_limit_redis_connected").set(1.0);
                    tracing::info!(nodes, "rate limits are shared through Redis");
                }
            }
            Ok(Err(err)) => self.fail(&err.to_string()),
            Err(_) => self.fail("timed out"),
        }
    }

    fn failed<T>(&self, why: &str) -> Option<T> {
        self.fail(why);
        None
    }

    /// Redis failed: decide alone until a heartbeat succeeds again.
    fn fail(&self, why: &str) {
        metrics::counter!("gatehouse_rate_limit_redis_failures_total").increment(1);
        metrics::gauge!("gatehouse_rate_limit_redis_connected").set(0.0);
        self.connected.store(false, Ordering::Relaxed);
        *self.connection.write().unwrap_or_else(|e| e.into_inner()) = None;
        let mut warned = self.warned_at.lock().unwrap_or_else(|e| e.into_inner());
        if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *warned = Some(Instant::now());
            tracing::warn!(
                error = %why,
                "Redis is unreachable: rate limits are this node's own until it is back"
            );
        }
    }

    /// Leaves the node set (at shutdown), so the others' allowance grows.
    pub async fn leave(&self) {
        if let Some(mut connection) = self.connection() {
            let _ = tokio::time::timeout(
                CALL_TIMEOUT,
                redis::cmd("ZREM")
                    .arg(NODES_KEY)
                    .arg(&self.node_id)
                    .query_async::<()>(&mut connection),
            )
            .await;
        }
    }
}

/// Takes Redis's answer as the key's view: the shared TAT, plus what this
/// node admitted after the call was sent (still pending).
fn apply(s: &mut super::table::State, ahead: u64, now: u64) {
    s.tat = gcra::add(
        s.quota,
        now.saturating_add(ahead),
        now,
        u64::from(s.pending),
    );
    s.since_sync = s.pending;
    s.synced_at = now;
}
