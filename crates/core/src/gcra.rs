//! The rate-limit arithmetic of SPEC §8: GCRA, the generic cell rate
//! algorithm. A key may make `limit` requests at once and then one every
//! `T = window / limit`; its whole state is one instant, the theoretical
//! arrival time (TAT) of its next request. A request is admitted when
//! `max(tat, now) + T - now ≤ limit·T`, and then `tat` becomes
//! `max(tat, now) + T`; a refused request changes nothing.
//!
//! Times are nanoseconds on whatever monotonic clock the caller keeps; a
//! TAT of 0 (or any TAT in the past) is a key with its whole quota. `T` is
//! rounded down to whole nanoseconds and the capacity is exactly `limit·T`,
//! so a burst is exactly `limit` requests; the rounding lets a key through
//! faster by less than `limit` nanoseconds per window.

/// Nanoseconds in a second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `limit` requests per `window_seconds`, as GCRA parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: u32,
    period: u64,
}

impl Quota {
    /// A quota of `limit` per `window_seconds` (each at least 1).
    pub fn new(limit: u32, window_seconds: u32) -> Self {
        let limit = limit.max(1);
        let window = u64::from(window_seconds.max(1)) * NANOS_PER_SEC;
        Self {
            limit,
            period: (window / u64::from(limit)).max(1),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The emission interval `T`, in nanoseconds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// How far ahead of now the TAT may be after an admission: `limit·T`.
    pub fn capacity(&self) -> u64 {
        self.period.saturating_mul(u64::from(self.limit))
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The TAT after the decision (unchanged when refused).
    pub tat: u64,
    /// Whole requests that would still be admitted now (`r`).
    pub remaining: u32,
    /// Whole seconds, rounded up, until the whole quota is back (`t`).
    pub reset_seconds: u64,
    /// When refused: whole seconds, rounded up, until a request would be
    /// admitted (`Retry-After`); 0 when admitted.
    pub retry_after_seconds: u64,
}

/// Decides one request at `now` for a key whose TAT is `tat`.
pub fn check(quota: Quota, tat: u64, now: u64) -> Outcome {
    let next = tat.max(now).saturating_add(quota.period);
    if next - now <= quota.capacity() {
        view(quota, next, now, true)
    } else {
        view(quota, tat, now, false)
    }
}

/// The TAT after `count` admissions that were made without a check (the
/// shared limits record admissions other nodes already made).
pub fn add(quota: Quota, tat: u64, now: u64, count: u64) -> u64 {
    tat.max(now)
        .saturating_add(quota.period.saturating_mul(count))
}

/// The TAT of a key whose quota changed from `from` to `to` (an
/// environment's own limit was set or cleared): the requests it has
/// outstanding stay outstanding, each now worth the new `T`, and never
/// more than a whole new window.
pub fn rescale(from: Quota, to: Quota, tat: u64, now: u64) -> u64 {
    if from.period == to.period || tat <= now {
        return tat;
    }
    let ahead = u128::from(tat - now) * u128::from(to.period) / u128::from(from.period);
    let ahead = u64::try_from(ahead).unwrap_or(u64::MAX).min(to.capacity());
    now.saturating_add(ahead)
}

/// The state of a key whose TAT is `tat`, seen at `now`, as an outcome
/// with the given verdict (`r`, `t`, and when refused `Retry-After`).
pub fn view(quota: Quota, tat: u64, now: u64, allowed: bool) -> Outcome {
    let ahead = tat.saturating_sub(now);
    let remaining = quota.capacity().saturating_sub(ahead) / quota.period;
    Outcome {
        allowed,
        tat,
        remaining: u32::try_from(remaining)
            .unwrap_or(u32::MAX)
            .min(quota.limit),
        reset_seconds: ceil_seconds(ahead),
        retry_after_seconds: if allowed {
            0
        } else {
            ceil_seconds(wait(quota, tat, now)).max(1)
        },
    }
}

/// Nanoseconds from `now` until a request would be admitted (0 when one
/// would be now): the moment `t` with `tat + T - t = limit·T`.
pub fn wait(quota: Quota, tat: u64, now: u64) -> u64 {
    tat.saturating_add(quota.period)
        .saturating_sub(quota.capacity())
        .saturating_sub(now)
}

fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = NANOS_PER_SEC;

    /// A fresh key takes exactly `limit` requests at one instant.
    #[test]
    fn burst_is_the_limit() {
        let q = Quota::new(3, 60);
        let now = 1_000 * S;
        let mut tat = 0;
        for left in [2, 1, 0] {
            let o = check(q, tat, now);
            assert!(o.allowed);
            assert_eq!(o.remaining, left);
            tat = o.tat;
        }
        let refused = check(q, tat, now);
        assert!(!refused.allowed);
        assert_eq!(refused.tat, tat, "a refused request consumes nothing");
        assert_eq!(refused.remaining, 0);
        assert_eq!(
            refused.retry_after_seconds, 20,
            "one request back after T = 20 s"
        );
        assert_eq!(refused.reset_seconds, 60);
    }

    /// The SPEC's example: the first of 1500 per minute leaves 1499; the
    /// quota is whole again one emission interval (40 ms, so 1 s) later.
    #[test]
    fn first_request_of_a_minute() {
        let o = check(Quota::new(1500, 60), 0, 5 * S);
        assert!(o.allowed);
        assert_eq!(o.remaining, 1499);
        assert_eq!(o.reset_seconds, 1);
    }

    /// 2 per 2 s: refused right after the burst, admitted exactly when
    /// `Retry-After` says, and not one nanosecond before the pass moment.
    #[test]
    fn retry_after_two_per_two_seconds() {
        let q = Quota::new(2, 2);
        let t0 = 10 * S;
        let tat = check(q, check(q, 0, t0).tat, t0).tat;
        let refused = check(q, tat, t0 + 5);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_seconds, 1);
        let pass = t0 + 5 + wait(q, tat, t0 + 5);
        assert_eq!(pass, t0 + S);
        assert!(!check(q, tat, pass - 1).allowed);
        assert!(check(q, tat, pass).allowed);
    }

    /// Odd windows round `T` down but never admit more than `limit` at once.
    #[test]
    fn rounding_keeps_the_burst() {
        for (limit, window) in [(3, 1), (7, 10), (999_999, 1), (1_000_000, 86_400)] {
            let q = Quota::new(limit, window);
            let now = 3 * S;
            let after = add(q, 0, now, u64::from(limit) - 1);
            assert!(check(q, after, now).allowed, "{limit}/{window}");
            assert!(!check(q, add(q, 0, now, u64::from(limit)), now).allowed);
        }
    }

    /// A new quota keeps the count of outstanding requests: 2 of 2 per
    /// minute used leaves 3 of 5 per minute; lowering it caps at full.
    #[test]
    fn rescaling_keeps_the_count() {
        let (two, five) = (Quota::new(2, 60), Quota::new(5, 60));
        let now = 100 * S;
        let tat = add(two, 0, now, 2);
        let o = check(five, rescale(two, five, tat, now), now);
        assert!(o.allowed);
        assert_eq!(o.remaining, 2);
        let full = add(five, 0, now, 5);
        assert_eq!(rescale(five, two, full, now), now + two.capacity());
        assert_eq!(rescale(two, two, tat, now), tat);
    }

    fn quota() -> impl Strategy<Value = Quota> {
        (1u32..=2_000, 1u32..=3_600).prop_map(|(l, w)| Quota::new(l, w))
    }

    proptest! {
        /// Waiting `Retry-After` seconds always passes; waiting until one
        /// nanosecond before the pass moment never does.
        #[test]
        fn retry_after_is_never_early(q in quota(), used in 0u64..4_000, now in S..1_000_000 * S) {
            let tat = add(q, 0, now, used);
            let o = check(q, tat, now);
            if !o.allowed {
                prop_assert!(o.retry_after_seconds >= 1);
                prop_assert!(check(q, tat, now + o.retry_after_seconds * S).allowed);
                let pass = now + wait(q, tat, now);
                prop_assert!(!check(q, tat, pass - 1).allowed);
                prop_assert!(check(q, tat, pass).allowed);
                prop_assert!(pass <= now + o.retry_after_seconds * S);
            }
        }

        /// `r` is honest: exactly that many more requests pass at once.
        #[test]
        fn remaining_is_exact(q in quota(), used in 0u64..4_000, now in S..1_000_000 * S) {
            let mut o = check(q, add(q, 0, now, used), now);
            if o.allowed {
                let promised = o.remaining;
                for _ in 0..promised {
                    o = check(q, o.tat, now);
                    prop_assert!(o.allowed);
                }
                prop_assert!(!check(q, o.tat, now).allowed);
            }
        }

        /// After `t` seconds without requests the whole quota is back.
        #[test]
        fn reset_brings_the_whole_quota(q in quota(), used in 1u64..4_000, now in S..1_000_000 * S) {
            let tat = add(q, 0, now, used);
            let o = view(q, tat, now, true);
            prop_assert_eq!(view(q, tat, now + o.reset_seconds * S, true).remaining, q.limit());
        }

        /// In any stretch of time `d`, at most `limit + d / T` requests
        /// are admitted, whatever the arrival pattern.
        #[test]
        fn never_more_than_the_rate(
            q in (1u32..=50, 1u32..=10).prop_map(|(l, w)| Quota::new(l, w)),
            gaps in proptest::collection::vec(0u64..(S / 2), 1..300),
        ) {
            let mut now = S;
            let mut tat = 0;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                let o = check(q, tat, now);
                if o.allowed {
                    admitted.push(now);
                    tat = o.tat;
                } else {
                    prop_assert_eq!(o.tat, tat);
                }
            }
            for (i, start) in admitted.iter().enumerate() {
                for (j, end) in admitted.iter().enumerate().skip(i) {
                    let count = (j - i + 1) as u64;
                    let bound = u64::from(q.limit()) + (end - start) / q.period();
                    prop_assert!(count <= bound, "{count} admitted in {} ns", end - start);
                }
            }
        }
    }
}
