//! The delivery worker, one per node. Every half second (or at once when
//! woken) it fans new outbox events out into messages, claims the due
//! messages of enabled webhooks (on PostgreSQL each message is claimed by
//! one node at a time), and sends them, at most [`CONCURRENCY`] at once,
//! each attempt bounded by [`TIMEOUT`]. A non-2xx answer or no answer is
//! retried on `webhook_retry_schedule_seconds` (±10 % jitter); every
//! attempt is logged; a webhook failing for [`DISABLE_AFTER_MS`] is
//! disabled, with an audit event.
//!
//! A message is claimed for [`CLAIM_MS`]: if the node dies mid-attempt the
//! claim runs out and any node sends it again. Delivery is therefore at
//! least once, always with the event id as `webhook-id`.

use std::{sync::Arc, time::Duration};

use gatehouse_core::{
    new_id,
    time::{format_ms, now_ms},
    IdKind, Reach,
};
use gatehouse_store::webhooks::{AttemptRecord, DeliveryRow, DueMessage, NextStep};
use rand::Rng;
use secrecy::SecretString;
use tokio::sync::{Notify, Semaphore};
use url::Url;

use super::{signing, target};
use crate::service::{audit, Services};

/// How long one attempt may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node holds a claimed message.
pub const CLAIM_MS: i64 = 60_000;
/// A webhook whose attempts have all failed for this long is disabled.
pub const DISABLE_AFTER_MS: i64 = 3 * 24 * 3600 * 1000;
/// Attempts in flight per node.
pub const CONCURRENCY: usize = 16;
/// How often the outbox is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_millis(500);
/// Events fanned out per transaction.
const FAN_OUT_BATCH: i64 = 200;
/// How much of an answer's status line is kept as the error.
const MAX_ERROR: usize = 200;

/// The node's delivery worker: its HTTP client, its slots, and the bell
/// that wakes it.
pub struct Worker {
    http: reqwest::Client,
    slots: Arc<Semaphore>,
    bell: Notify,
}

impl Worker {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        Ok(Self {
            http: target::client(TIMEOUT, allow_private)?,
            slots: Arc::new(Semaphore::new(CONCURRENCY)),
            bell: Notify::new(),
        })
    }

    /// Looks at the outbox now instead of at the next poll.
    pub fn wake(&self) {
        self.bell.notify_one();
    }
}

/// Runs the worker until the task is aborted.
pub async fn run(svc: Services) {
    loop {
        if let Err(err) = tick(&svc).await {
            tracing::warn!(error = %format!("{err:#}"), "webhook delivery could not run");
        }
        let worker = svc.webhook_worker();
        tokio::select! {
            _ = worker.bell.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One look at the outbox: fan out, then start the due attempts that fit.
async fn tick(svc: &Services) -> anyhow::Result<()> {
    let state = svc.store().outbox_state().await?;
    if state.unfanned {
        while svc.store().fan_out(FAN_OUT_BATCH, now_ms()).await? == FAN_OUT_BATCH as usize {}
    }
    let now = now_ms();
    let due = state.unfanned || state.next_due.is_some_and(|at| at <= now);
    let worker = svc.webhook_worker();
    let free = worker.slots.available_permits();
    if !due || free == 0 {
        return Ok(());
    }
    let messages = svc
        .store()
        .claim_messages(now, now + CLAIM_MS, free as i64)
        .await?;
    for message in messages {
        let Ok(permit) = worker.slots.clone().acquire_owned().await else {
            break;
        };
        let svc = svc.clone();
        tokio::spawn(async move {
            let webhook_id = message.webhook_id.clone();
            if let Err(err) = attempt(&svc, message).await {
                tracing::warn!(webhook = %webhook_id, error = %format!("{err:#}"), "could not record a webhook delivery");
            }
            drop(permit);
        });
    }
    Ok(())
}

/// What an attempt got back.
struct Answer {
    status_code: Option<i32>,
    error: Option<String>,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The signing keys of a message: the current secret, and the previous one
/// while it is still valid.
fn keys(svc: &Services, m: &DueMessage, now: i64) -> anyhow::Result<Vec<aws_lc_rs::hmac::Key>> {
    let open = |master_key_id: &str, sealed: &[u8]| -> anyhow::Result<aws_lc_rs::hmac::Key> {
        let plain = svc
            .keyring()
            .open(master_key_id, sealed, m.webhook_id.as_bytes())?;
        let secret = SecretString::from(String::from_utf8(plain.to_vec())?);
        signing::key_of(&secret).ok_or_else(|| anyhow::anyhow!("a webhook secret is malformed"))
    };
    let mut keys = vec![open(&m.master_key_id, &m.secret_sealed)?];
    if let (Some(sealed), Some(kid), Some(until)) = (
        &m.previous_secret_sealed,
        &m.previous_master_key_id,
        m.previous_secret_until,
    ) {
        if until > now {
            keys.push(open(kid, sealed)?);
        }
    }
    Ok(keys)
}

/// Sends one message once.
async fn send(svc: &Services, m: &DueMessage) -> anyhow::Result<Answer> {
    let url = Url::parse(&m.url)?;
    if !svc.config().allow_private_webhook_targets {
        if let Err(e) = target::check_literal(&url) {
            return Ok(Answer {
                status_code: None,
                error: Some(e.to_string()),
            });
        }
    }
    let now = now_ms();
    let timestamp = now / 1000;
    let signature = signing::signature(&keys(svc, m, now)?, &m.event_id, timestamp, &m.body);
    let sent = svc
        .webhook_worker()
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &m.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(m.body.clone())
        .send()
        .await;
    Ok(match sent {
        Ok(resp) => {
            let status = resp.status();
            Answer {
                status_code: Some(i32::from(status.as_u16())),
                error: (!status.is_success()).then(|| {
                    let mut e = format!("answered {status}");
                    e.truncate(MAX_ERROR);
                    e
                }),
            }
        }
        Err(err) => Answer {
            status_code: None,
            error: Some(describe(&err)),
        },
    })
}

/// A short reason for a failed request, without anything from the target.
fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut source = err.source();
    while let Some(s) = source {
        if s.downcast_ref::<gatehouse_core::webhook::TargetError>()
            .is_some()
        {
            return s.to_string();
        }
        source = s.source();
    }
    if err.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if err.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    }
}

/// `delay` seconds ±10 %.
fn jittered(delay_s: u64) -> i64 {
    let ms = delay_s as f64 * 1000.0;
    let factor = rand::rng().random_range(0.9..=1.1);
    (ms * factor).round() as i64
}

/// What follows attempt number `attempt` (1-based) with `schedule`.
pub fn next_step(ok: bool, attempt: i32, schedule: &[u64], now: i64) -> NextStep {
    if ok {
        return NextStep::Delivered;
    }
    match schedule.get(attempt.max(1) as usize - 1) {
        Some(delay) => NextStep::RetryAt(now + jittered(*delay)),
        None => NextStep::GaveUp,
    }
}

/// Sends a message and records the attempt.
async fn attempt(svc: &Services, m: DueMessage) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let answer = send(svc, &m).await?;
    let now = now_ms();
    let attempt = m.attempts + 1;
    let ok = answer.ok();
    let next = next_step(
        ok,
        attempt,
        &svc.config().webhook_retry_schedule_seconds,
        now,
    );
    let failing_since = m.failing_since.unwrap_or(now);
    let disable = (!ok && now - failing_since >= DISABLE_AFTER_MS).then(|| {
        format!(
            "every delivery failed from {} to {}",
            format_ms(failing_since),
            format_ms(now)
        )
    });
    let effects = match &disable {
        Some(_) => audit::effects(
            audit::Actor {
                kind: "system",
                id: "webhooks",
            },
            "webhook.disabled",
            ("webhook", &m.webhook_id),
            &Reach::environment(&m.organization_id, &m.project_id, &m.environment_id),
            &audit::Origin::default(),
        ),
        None => Default::default(),
    };
    let outcome = if ok { "delivered" } else { "failed" };
    metrics::counter!("gatehouse_webhook_attempts_total", "outcome" => outcome).increment(1);
    svc.store()
        .record_attempt(&AttemptRecord {
            delivery: DeliveryRow {
                id: new_id(IdKind::WebhookDelivery),
                webhook_id: m.webhook_id.clone(),
                message_id: m.id.clone(),
                event_id: m.event_id.clone(),
                event_type: m.event_type.clone(),
                attempt,
                status_code: answer.status_code,
                latency_ms: started.elapsed().as_millis() as i64,
                error: answer.error,
                at: now,
            },
            next,
            disable,
            effects,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule's delays, ±10 %, then giving up.
    #[test]
    fn schedule_and_jitter() {
        let schedule = [5, 300];
        for _ in 0..100 {
            let NextStep::RetryAt(at) = next_step(false, 1, &schedule, 0) else {
                panic!("expected a retry");
            };
            assert!((4500..=5500).contains(&at), "{at}");
            let NextStep::RetryAt(at) = next_step(false, 2, &schedule, 1000) else {
                panic!("expected a retry");
            };
            assert!((271_000..=331_000).contains(&at), "{at}");
        }
        assert_eq!(next_step(false, 3, &schedule, 0), NextStep::GaveUp);
        assert_eq!(next_step(true, 3, &schedule, 0), NextStep::Delivered);
    }
}
