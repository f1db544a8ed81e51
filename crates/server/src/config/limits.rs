//! `[rate_limits]` (SPEC §8): one `{limit, window_seconds}` per policy,
//! each defaulting to the SPEC's value. `enabled = false` turns every
//! limit off (for a deployment behind a gateway that limits already).

use anyhow::bail;
use serde::Deserialize;

/// How many requests a key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub limit: u32,
    pub window_seconds: u32,
}

impl Rule {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window_seconds: 60,
        }
    }

    /// `Err` naming `key` unless the limit is 1–1,000,000 per 1 s–1 day.
    pub fn check(&self, key: &str) -> anyhow::Result<()> {
        if !(1..=1_000_000).contains(&self.limit) {
            bail!(
                "invalid {key}.limit: {} must be from 1 to 1000000",
                self.limit
            );
        }
        if !(1..=86_400).contains(&self.window_seconds) {
            bail!(
                "invalid {key}.window_seconds: {} must be from 1 to 86400",
                self.window_seconds
            );
        }
        Ok(())
    }
}

/// The five policies of SPEC §8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub enabled: bool,
    /// Per access key, PAT, session or connect-token subject.
    pub credential: Rule,
    /// `POST /v1/connect/tokens` per (app, user_id).
    pub connect_token_user: Rule,
    /// Unauthenticated API requests per client IP.
    pub ip: Rule,
    /// `POST /login` per client IP.
    pub sign_in: Rule,
    /// Every request acting in one environment, unless the environment
    /// has its own.
    pub environment: Rule,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            credential: Rule::per_minute(1500),
            connect_token_user: Rule::per_minute(100),
            ip: Rule::per_minute(1500),
            sign_in: Rule::per_minute(10),
            environment: Rule::per_minute(3000),
        }
    }
}

/// `[rate_limits]` as written: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    pub enabled: Option<bool>,
    pub credential: Option<Rule>,
    pub connect_token_user: Option<Rule>,
    pub ip: Option<Rule>,
    pub sign_in: Option<Rule>,
    pub environment: Option<Rule>,
}

impl RawRateLimits {
    pub fn resolve(self) -> anyhow::Result<RateLimits> {
        let d = RateLimits::default();
        let pick = |key: &str, rule: Option<Rule>, default: Rule| -> anyhow::Result<Rule> {
            let rule = rule.unwrap_or(default);
            rule.check(&format!("rate_limits.{key}"))?;
            Ok(rule)
        };
        Ok(RateLimits {
            enabled: self.enabled.unwrap_or(true),
            credential: pick("credential", self.credential, d.credential)?,
            connect_token_user: pick(
                "connect_token_user",
                self.connect_token_user,
                d.connect_token_user,
            )?,
            ip: pick("ip", self.ip, d.ip)?,
            sign_in: pick("sign_in", self.sign_in, d.sign_in)?,
            environment: pick("environment", self.environment, d.environment)?,
        })
    }
}

/// The Standard Webhooks retry schedule: seconds after each failed
/// attempt (SPEC §9).
pub const DEFAULT_RETRY_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];

/// `webhook_retry_schedule_seconds`: 1–20 delays of 1 s to 1 day, from a
/// TOML array or a comma-separated string (environment, flags).
pub fn retry_schedule(raw: Option<ScheduleValue>) -> anyhow::Result<Vec<u64>> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_RETRY_SCHEDULE.to_vec());
    };
    let items: Vec<String> = match raw {
        ScheduleValue::List(v) => v.iter().map(|n| n.to_string()).collect(),
        ScheduleValue::Text(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
    };
    let parsed: Option<Vec<u64>> = items
        .iter()
        .map(|s| s.parse::<u64>().ok().filter(|n| (1..=86_400).contains(n)))
        .collect();
    match parsed {
        Some(v) if (1..=20).contains(&v.len()) => Ok(v),
        _ => bail!(
            "invalid webhook_retry_schedule_seconds: must be 1 to 20 whole numbers of seconds from 1 to 86400, e.g. [5, 300, 1800]"
        ),
    }
}

/// A schedule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScheduleValue {
    List(Vec<i64>),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_values() {
        let d = RawRateLimits::default().resolve().unwrap();
        assert_eq!(d, RateLimits::default());
        assert_eq!(d.credential, Rule::per_minute(1500));
        assert_eq!(d.connect_token_user, Rule::per_minute(100));
        assert_eq!(d.ip, Rule::per_minute(1500));
        assert_eq!(d.sign_in, Rule::per_minute(10));
        assert_eq!(d.environment, Rule::per_minute(3000));
    }

    #[test]
    fn bad_rules_name_their_key() {
        let err = RawRateLimits {
            ip: Some(Rule {
                limit: 0,
                window_seconds: 60,
            }),
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("rate_limits.ip.limit"), "{err}");
    }

    #[test]
    fn schedules() {
        assert_eq!(retry_schedule(None).unwrap(), DEFAULT_RETRY_SCHEDULE);
        assert_eq!(
            retry_schedule(Some(ScheduleValue::Text("1, 2,3".into()))).unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            retry_schedule(Some(ScheduleValue::List(vec![5, 10]))).unwrap(),
            vec![5, 10]
        );
        for bad in ["", "0", "a,b", "5,-1"] {
            assert!(retry_schedule(Some(ScheduleValue::Text(bad.into()))).is_err());
        }
    }
}
