//! Rate limits (SPEC §8). Five policies, each a GCRA quota
//! ([`gatehouse_core::gcra`]) per key, decided on this node from a bounded
//! table ([`table`]) and, with `redis_url`, shared by every node through
//! Redis ([`shared`]). What one request was charged is collected in its
//! [`Meter`], from which the HTTP layer writes the `RateLimit-Policy` and
//! `RateLimit` headers. The charging points are in [`charge`]
//! ([`caller`], [`connect_caller`], [`app`], [`anonymous`], [`sign_in`],
//! [`end_user_tokens`]); docs/rate-limits.md tells the design and how far
//! the shared limits can overshoot.

mod charge;
mod overrides;
mod shared;
mod table;

use std::{cell::RefCell, future::Future};

use gatehouse_core::gcra::{Outcome, Quota};
use gatehouse_store::Store;

use crate::{
    config::limits::{RateLimits, Rule},
    error::{ApiError, ApiResult},
};
pub use charge::{anonymous, app, caller, connect_caller, end_user_tokens, ip_key, sign_in};
pub use table::{HeldSlot, Key, CAPACITY};

/// The policies of SPEC §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Credential,
    ConnectTokenUser,
    Ip,
    SignIn,
    Environment,
}

impl Policy {
    /// The name in `[rate_limits]` and in the headers.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::ConnectTokenUser => "connect_token_user",
            Self::Ip => "ip",
            Self::SignIn => "sign_in",
            Self::Environment => "environment",
        }
    }
}

/// One policy charged for one request, and where its key stands.
#[derive(Debug, Clone, Copy)]
pub struct Charge {
    pub policy: Policy,
    key: Key,
    pub rule: Rule,
    /// Requests the key could still make now (`r`).
    pub remaining: u32,
    /// Seconds until its whole quota is back (`t`).
    pub reset_seconds: u64,
    /// Set when this policy refused the request.
    pub retry_after: Option<u64>,
}

/// What a request was charged. The HTTP layer runs each limited request
/// in [`Meter::scope`], and a meter taken within it ([`Meter::current`])
/// is active; anywhere else (a page, an ops route, limits turned off) the
/// meter is inactive, and charging it does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meter {
    active: bool,
}

tokio::task_local! {
    /// The charges of the limited request this task is serving
    /// ([`Meter::scope`]): no entry in its extensions, no lock. Boxed: the
    /// request's future, which holds it, is moved several times on its
    /// way down the layers, and a list inline would be copied each time.
    /// A charge made outside the request's task is still decided and
    /// enforced, only not shown in the headers.
    static CHARGES: Box<RefCell<Charges>>;
}

/// The most charges one request records: each of the five policies for
/// two keys. (No request charges more; a further charge is decided but
/// not shown in the headers.)
const MAX_CHARGES: usize = 10;

/// A request's charges, held in place.
#[derive(Debug)]
struct Charges {
    list: [Charge; MAX_CHARGES],
    len: usize,
}

impl Default for Charges {
    fn default() -> Self {
        let none = Charge {
            policy: Policy::Credential,
            key: Key([0; 16]),
            rule: Rule::per_minute(0),
            remaining: 0,
            reset_seconds: 0,
            retry_after: None,
        };
        Self {
            list: [none; MAX_CHARGES],
            len: 0,
        }
    }
}

impl Charges {
    fn as_slice(&self) -> &[Charge] {
        &self.list[..self.len]
    }
}

impl Meter {
    /// Runs `request` as a limited request (every meter taken within it is
    /// active), then `done` with its output and the charges it made.
    pub async fn scope<T>(
        request: impl Future<Output = T>,
        done: impl FnOnce(&mut T, &[Charge]),
    ) -> T {
        CHARGES
            .scope(Box::default(), async move {
                let mut output = request.await;
                let _ = CHARGES.try_with(|charges| match charges.try_borrow() {
                    Ok(charges) => done(&mut output, charges.as_slice()),
                    Err(_) => done(&mut output, &[]),
                });
                output
            })
            .await
    }

    /// The meter of the request this task is serving: active within
    /// [`Self::scope`].
    pub fn current() -> Self {
        Self {
            active: CHARGES.try_with(|_| ()).is_ok(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Every charge so far, in the order made.
    pub fn charges(&self) -> Vec<Charge> {
        self.read(|charges| charges.to_vec()).unwrap_or_default()
    }

    /// `f` of the charges so far; `None` outside a scope.
    fn read<T>(&self, f: impl FnOnce(&[Charge]) -> T) -> Option<T> {
        if !self.active {
            return None;
        }
        CHARGES
            .try_with(|charges| charges.try_borrow().ok().map(|c| f(c.as_slice())))
            .ok()
            .flatten()
    }

    fn has(&self, policy: Policy, key: &Key) -> bool {
        self.read(|charges| charges.iter().any(|c| c.policy == policy && c.key == *key))
            .unwrap_or(false)
    }

    fn record(&self, charge: Charge) {
        if !self.active {
            return;
        }
        let _ = CHARGES.try_with(|charges| {
            if let Ok(mut charges) = charges.try_borrow_mut() {
                if charges.len < MAX_CHARGES {
                    let at = charges.len;
                    charges.list[at] = charge;
                    charges.len += 1;
                }
            }
        });
    }
}

/// Whether the limits are shared through Redis right now, and by how many
/// nodes (for `/metrics` and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedState {
    /// Redis answered the last call.
    pub connected: bool,
    /// Nodes that sent a heartbeat in the last few seconds.
    pub nodes: u32,
}

/// The limiter of one node.
pub struct Limiter {
    rules: RateLimits,
    table: table::Table,
    overrides: overrides::Overrides,
    shared: Option<shared::Shared>,
}

impl Limiter {
    /// The limits of `rules`, shared through `redis_url` when given (the
    /// connection is made by [`Limiter::run`], so this never waits).
    pub fn new(rules: RateLimits, redis_url: Option<&str>) -> anyhow::Result<Self> {
        let shared = match redis_url {
            Some(url) if rules.enabled => Some(shared::Shared::new(url)?),
            _ => None,
        };
        let grace = match shared {
            Some(_) => table::SHARED_GRACE,
            None => table::LOCAL_GRACE,
        };
        Ok(Self {
            rules,
            table: table::Table::new(grace),
            overrides: overrides::Overrides::default(),
            shared,
        })
    }

    /// False when `[rate_limits] enabled = false`.
    pub fn enabled(&self) -> bool {
        self.rules.enabled
    }

    /// The rule of `policy`; for `environment`, that environment's own
    /// when it set one.
    pub fn rule(&self, policy: Policy, environment_id: Option<&str>) -> Rule {
        let r = &self.rules;
        match policy {
            Policy::Credential => r.credential,
            Policy::ConnectTokenUser => r.connect_token_user,
            Policy::Ip => r.ip,
            Policy::SignIn => r.sign_in,
            Policy::Environment => environment_id
                .and_then(|id| self.overrides.get(id))
                .unwrap_or(r.environment),
        }
    }

    /// Charges one request to `policy` for the key made of `parts`: `Ok`
    /// when admitted, 429 when not (which consumes nothing). A key charged
    /// already for this request is not charged twice.
    pub async fn charge(
        &self,
        meter: &Meter,
        policy: Policy,
        rule: Rule,
        parts: &[&str],
    ) -> ApiResult<()> {
        if !self.rules.enabled || !meter.is_active() {
            return Ok(());
        }
        self.charge_key(meter, policy, rule, Key::of(policy.name(), parts), None)
            .await
    }

    /// [`Self::charge`] with the key already derived (`Key::of` the
    /// policy's name and the parts), for callers that keep it, and maybe
    /// its slot (`held`).
    pub async fn charge_key(
        &self,
        meter: &Meter,
        policy: Policy,
        rule: Rule,
        key: Key,
        held: Option<&HeldSlot>,
    ) -> ApiResult<()> {
        if !self.rules.enabled || !meter.is_active() {
            return Ok(());
        }
        if meter.has(policy, &key) {
            return Ok(());
        }
        let outcome = self
            .decide(key, Quota::new(rule.limit, rule.window_seconds), held)
            .await;
        let retry_after = (!outcome.allowed).then_some(outcome.retry_after_seconds);
        meter.record(Charge {
            policy,
            key,
            rule,
            remaining: outcome.remaining,
            reset_seconds: outcome.reset_seconds,
            retry_after,
        });
        match retry_after {
            None => Ok(()),
            Some(retry_after) => {
                metrics::counter!("gatehouse_rate_limited_total", "policy" => policy.name())
                    .increment(1);
                Err(ApiError::RateLimited { retry_after })
            }
        }
    }

    async fn decide(&self, key: Key, quota: Quota, held: Option<&HeldSlot>) -> Outcome {
        let now = table::now();
        let slot = match held {
            Some(held) => self.table.held_slot(key, quota, held, now),
            None => self.table.slot(key, quota),
        };
        match &self.shared {
            Some(shared) if shared.connected() => shared.decide(key, &slot, quota).await,
            _ => slot.decide_locally(quota, now),
        }
    }

    /// Keys held in this node's table, after pending evictions (never more
    /// than [`CAPACITY`]).
    pub fn entry_count(&self) -> u64 {
        self.table.entry_count()
    }

    /// `None` without `redis_url`.
    pub fn shared_state(&self) -> Option<SharedState> {
        self.shared.as_ref().map(|s| SharedState {
            connected: s.connected(),
            nodes: s.nodes(),
        })
    }

    /// Reads every environment's own limit from the store (at start-up,
    /// after a change, and every few seconds in [`Limiter::run`]).
    pub async fn reload_overrides(&self, store: &Store) {
        self.overrides.reload(store).await;
    }

    /// Another node changed an environment's limit: reload soon.
    pub fn overrides_changed(&self) {
        self.overrides.changed();
    }

    /// The node's background work, until the process stops: reloading the
    /// environments' own limits, and with Redis the heartbeat and the
    /// batched flush of admissions.
    pub async fn run(&self, store: Store) {
        let shared = async {
            match &self.shared {
                Some(s) => s.run().await,
                None => std::future::pending().await,
            }
        };
        tokio::join!(self.overrides.run(&store), shared);
    }

    /// Takes this node out of the shared node count (at shutdown).
    pub async fn leave(&self) {
        if let Some(s) = &self.shared {
            s.leave().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rule: Rule) -> Limiter {
        Limiter::new(
            RateLimits {
                credential: rule,
                ..RateLimits::default()
            },
            None,
        )
        .unwrap()
    }

    /// Refused requests consume nothing, other keys are untouched, and a
    /// key is charged once per request.
    #[tokio::test]
    async fn charges_per_key() {
        let l = limiter(Rule {
            limit: 2,
            window_seconds: 60,
        });
        let rule = l.rule(Policy::Credential, None);
        for _ in 0..2 {
            let seen = Meter::scope(
                async {
                    let m = Meter::current();
                    assert!(m.is_active());
                    l.charge(&m, Policy::Credential, rule, &["a"])
                        .await
                        .unwrap();
                    l.charge(&m, Policy::Credential, rule, &["a"])
                        .await
                        .unwrap();
                    m.charges().len()
                },
                |seen, charges| *seen += 10 * charges.len(),
            )
            .await;
            // One charge seen within the request, and handed to `done`.
            assert_eq!(seen, 11);
        }
        let refused = Meter::scope(
            async {
                let m = Meter::current();
                let err = l.charge(&m, Policy::Credential, rule, &["a"]).await;
                assert!(matches!(
                    err,
                    Err(ApiError::RateLimited { retry_after: 30 })
                ));
                m.charges()
            },
            |_, _| {},
        )
        .await;
        assert_eq!(refused[0].remaining, 0);
        assert_eq!(refused[0].retry_after, Some(30));
        Meter::scope(
            async {
                l.charge(&Meter::current(), Policy::Credential, rule, &["b"])
                    .await
                    .unwrap();
            },
            |_, _| {},
        )
        .await;
        // Outside a limited request the meter is inactive: nothing is
        // charged or recorded.
        let outside = Meter::current();
        assert!(!outside.is_active());
        l.charge(&outside, Policy::Credential, rule, &["a"])
            .await
            .unwrap();
        assert!(outside.charges().is_empty());
    }

    /// A meter taken within a limited request but used in another task
    /// (which does not see the request's charges) still enforces the
    /// limit; the charge is only missing from the headers.
    #[tokio::test]
    async fn charges_outside_the_request_task_are_enforced() {
        let l = std::sync::Arc::new(limiter(Rule {
            limit: 1,
            window_seconds: 60,
        }));
        let rule = l.rule(Policy::Credential, None);
        let m = Meter::scope(async { Meter::current() }, |_, _| {}).await;
        assert!(m.is_active());
        let spawned = {
            let l = l.clone();
            tokio::spawn(async move {
                let first = l.charge(&m, Policy::Credential, rule, &["c"]).await;
                let second = l.charge(&m, Policy::Credential, rule, &["c"]).await;
                (first.is_ok(), second.is_ok(), m.charges().len())
            })
        };
        assert_eq!(spawned.await.unwrap(), (true, false, 0));
    }
}
