//! Webhooks (SPEC §9) and their delivery: the outbox's fan-out into one
//! message per (event, webhook), the claim of due messages by one node at
//! a time, and the immutable log of attempts.
//!
//! On PostgreSQL several nodes share the tables: fan-out and claims take
//! their rows with `FOR UPDATE SKIP LOCKED`, so each event is fanned out
//! once and each message is in the hands of one node. SQLite has one
//! writer, so the same statements without the locking clause are already
//! exclusive.

use gatehouse_core::{new_id, IdKind};

use crate::{
    effects::{write_effects, Effects},
    error::Result,
    on_pool,
    page::{Page, PageRequest},
    Backend, Store,
};

/// A webhook. Both secrets are sealed with the master key (AAD: the id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub environment_id: String,
    pub url: String,
    /// Space-separated event types.
    pub events: String,
    pub description: Option<String>,
    pub secret_sealed: Vec<u8>,
    pub master_key_id: String,
    /// After a rotation: the old secret, which also signs until
    /// `previous_secret_until`.
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_master_key_id: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub enabled: bool,
    /// When the current run of failed attempts began (none: the last
    /// attempt succeeded).
    pub failing_since: Option<i64>,
    /// Why Gatehouse disabled the webhook, if it did.
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl WebhookRow {
    /// Whether the webhook subscribes to events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.split_whitespace().any(|e| e == kind)
    }
}

/// Which webhooks to list.
#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
}

/// One delivery attempt, never changed once written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    /// None when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub at: i64,
}

/// A message claimed for delivery, with what sending it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueMessage {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    /// Attempts made so far.
    pub attempts: i32,
    pub url: String,
    pub organization_id: String,
    pub project_id: String,
    pub environment_id: String,
    pub secret_sealed: Vec<u8>,
    pub master_key_id: String,
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_master_key_id: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub failing_since: Option<i64>,
}

/// What became of a message after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered (a 2xx answer).
    Delivered,
    /// Failed; try again at this time.
    RetryAt(i64),
    /// Failed for the last time.
    GaveUp,
}

/// The outcome of one attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery: DeliveryRow,
    pub next: NextStep,
    /// Disable the webhook with this reason (it has failed too long).
    pub disable: Option<String>,
    /// The audit event of disabling it.
    pub effects: Effects,
}

/// What the delivery worker has to do next.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxState {
    /// Whether events wait to be fanned out.
    pub unfanned: bool,
    /// When the earliest pending message is due (Unix ms).
    pub next_due: Option<i64>,
}

const WEBHOOK_COLUMNS: &str = "id, organization_id, project_id, environment_id, url, events, description, \
     secret_sealed, master_key_id, previous_secret_sealed, previous_master_key_id, previous_secret_until, \
     enabled, failing_since, disabled_reason, created_at, updated_at, deleted_at";

const DELIVERY_COLUMNS: &str =
    "id, webhook_id, message_id, event_id, event_type, attempt, status_code, latency_ms, error, at";

impl Store {
    /// The row-locking clause for rows one node takes: `FOR UPDATE SKIP
    /// LOCKED` on PostgreSQL, nothing on SQLite.
    fn locking(&self) -> &'static str {
        match self.pool {
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite(_) => "",
        }
    }

    /// `BEGIN` of a transaction that reads before it writes: on SQLite it
    /// takes the write lock first, so the write cannot fail on a snapshot
    /// another writer moved on from.
    fn begin_writing(&self) -> &'static str {
        match self.pool {
            Backend::Postgres(_) => "BEGIN",
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_webhook(&self, w: &WebhookRow, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO webhooks (id, organization_id, project_id, environment_id, url, events, description, \
                 secret_sealed, master_key_id, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&w.id)
            .bind(&w.organization_id)
            .bind(&w.project_id)
            .bind(&w.environment_id)
            .bind(&w.url)
            .bind(&w.events)
            .bind(&w.description)
            .bind(&w.secret_sealed)
            .bind(&w.master_key_id)
            .bind(w.enabled)
            .bind(w.created_at)
            .bind(w.updated_at)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A live webhook by id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>> {
        let q =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND deleted_at IS NULL");
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// Live webhooks matching `filter`, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_webhooks(
        &self,
        f: &WebhookFilter,
        page: PageRequest,
    ) -> Result<Page<WebhookRow>> {
        let cond =
            "organization_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR project_id = $2) \
                    AND ($3 IS NULL OR environment_id = $3)";
        let list = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE {cond} ORDER BY id DESC LIMIT $4 OFFSET $5"
        );
        let count = format!("SELECT COUNT(*) FROM webhooks WHERE {cond}");
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(&f.organization_id)
                .bind(&f.project_id)
                .bind(&f.environment_id)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = sqlx::query_scalar(&count)
                .bind(&f.organization_id)
                .bind(&f.project_id)
                .bind(&f.environment_id)
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }

    /// Writes every mutable field of a webhook (target, events,
    /// description, state, secrets).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_webhook(&self, w: &WebhookRow, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE webhooks SET url = $1, events = $2, description = $3, secret_sealed = $4, master_key_id = $5, \
                 previous_secret_sealed = $6, previous_master_key_id = $7, previous_secret_until = $8, enabled = $9, \
                 failing_since = $10, disabled_reason = $11, updated_at = $12 WHERE id = $13 AND deleted_at IS NULL",
            )
            .bind(&w.url)
            .bind(&w.events)
            .bind(&w.description)
            .bind(&w.secret_sealed)
            .bind(&w.master_key_id)
            .bind(&w.previous_secret_sealed)
            .bind(&w.previous_master_key_id)
            .bind(w.previous_secret_until)
            .bind(w.enabled)
            .bind(w.failing_since)
            .bind(&w.disabled_reason)
            .bind(w.updated_at)
            .bind(&w.id)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Soft-deletes a webhook; its pending messages are dropped. Its
    /// delivery log stays until the events are pruned.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_webhook(&self, id: &str, at: i64, effects: &Effects) -> Result<()> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE webhook_messages SET status = 'cancelled', finished_at = $1 WHERE webhook_id = $2 AND status = 'pending'",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A webhook's delivery attempts, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_deliveries(
        &self,
        webhook_id: &str,
        page: PageRequest,
    ) -> Result<Page<DeliveryRow>> {
        let list = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        Ok(on_pool!(self, |p| {
            let items = sqlx::query_as(&list)
                .bind(webhook_id)
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total =
                sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1")
                    .bind(webhook_id)
                    .fetch_one(p)
                    .await?;
            Page { items, total }
        }))
    }

    /// One delivery attempt of a webhook.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delivery(&self, webhook_id: &str, id: &str) -> Result<Option<DeliveryRow>> {
        let q = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2"
        );
        Ok(on_pool!(self, |p| sqlx::query_as(&q)
            .bind(id)
            .bind(webhook_id)
            .fetch_optional(p)
            .await?))
    }

    /// Makes a message due now: a new attempt of its event, whatever
    /// became of the earlier ones. False when the message is gone.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn retry_message(
        &self,
        message_id: &str,
        now: i64,
        effects: &Effects,
    ) -> Result<bool> {
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            let changed = sqlx::query(
                "UPDATE webhook_messages SET status = 'pending', next_attempt_at = $1, finished_at = NULL \
                 WHERE id = $2 AND status <> 'cancelled'",
            )
            .bind(now)
            .bind(message_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                write_effects!(tx, effects);
            }
            tx.commit().await?;
            changed == 1
        }))
    }

    /// Whether events wait for fan-out, and when the next message is due.
    #[tracing::instrument(level = "trace", skip_all)]
    pub async fn outbox_state(&self) -> Result<OutboxState> {
        let (unfanned, next_due): (Option<String>, Option<i64>) = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT (SELECT id FROM webhook_events WHERE fanned_out_at IS NULL LIMIT 1), \
             (SELECT MIN(m.next_attempt_at) FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id \
              WHERE m.status = 'pending' AND w.enabled AND w.deleted_at IS NULL)"
        )
        .fetch_one(p)
        .await?
        });
        Ok(OutboxState {
            unfanned: unfanned.is_some(),
            next_due,
        })
    }

    /// Fans up to `limit` outbox events out into one pending message per
    /// enabled webhook of their environment that subscribes to their type;
    /// returns how many events were fanned out.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn fan_out(&self, limit: i64, now: i64) -> Result<usize> {
        let pick = format!(
            "SELECT id, environment_id, type FROM webhook_events WHERE fanned_out_at IS NULL \
             ORDER BY created_at, id LIMIT $1{}",
            self.locking()
        );
        let hooks = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE environment_id = $1 AND enabled AND deleted_at IS NULL"
        );
        let begin = self.begin_writing();
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin_with(begin).await?;
            let events: Vec<(String, String, String)> = sqlx::query_as(&pick)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            let mut by_env: std::collections::HashMap<String, Vec<WebhookRow>> =
                std::collections::HashMap::new();
            for (event_id, environment_id, kind) in &events {
                if !by_env.contains_key(environment_id) {
                    let rows: Vec<WebhookRow> = sqlx::query_as(&hooks)
                        .bind(environment_id)
                        .fetch_all(&mut *tx)
                        .await?;
                    by_env.insert(environment_id.clone(), rows);
                }
                for hook in by_env[environment_id].iter().filter(|h| h.wants(kind)) {
                    sqlx::query(
                        "INSERT INTO webhook_messages (id, webhook_id, event_id, status, attempts, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, 'pending', 0, $4, $4) ON CONFLICT (webhook_id, event_id) DO NOTHING",
                    )
                    .bind(new_id(IdKind::WebhookMessage))
                    .bind(&hook.id)
                    .bind(event_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE webhook_events SET fanned_out_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(event_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            events.len()
        }))
    }

    /// Claims up to `limit` due messages of enabled webhooks for this node
    /// until `until` (Unix ms); a claim that runs out (the node died) makes
    /// the message due again for any node.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn claim_messages(
        &self,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<DueMessage>> {
        let claim_id = new_id(IdKind::WebhookMessage);
        let lock = match self.pool {
            Backend::Postgres(_) => " FOR UPDATE OF m SKIP LOCKED",
            Backend::Sqlite(_) => "",
        };
        let claim = format!(
            "UPDATE webhook_messages SET claimed_until = $1, claimed_by = $2 WHERE id IN (\
             SELECT m.id FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id \
             WHERE m.status = 'pending' AND m.next_attempt_at <= $3 AND (m.claimed_until IS NULL OR m.claimed_until <= $3) \
             AND w.enabled AND w.deleted_at IS NULL ORDER BY m.next_attempt_at LIMIT $4{lock})"
        );
        let read = "SELECT m.id, m.webhook_id, m.event_id, e.type AS event_type, e.body, m.attempts, w.url, \
                    w.organization_id, w.project_id, w.environment_id, w.secret_sealed, w.master_key_id, \
                    w.previous_secret_sealed, w.previous_master_key_id, w.previous_secret_until, w.failing_since \
                    FROM webhook_messages m JOIN webhooks w ON w.id = m.webhook_id JOIN webhook_events e ON e.id = m.event_id \
                    WHERE m.claimed_by = $1 AND m.status = 'pending' ORDER BY m.next_attempt_at";
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(&claim)
                .bind(until)
                .bind(&claim_id)
                .bind(now)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
            let due = sqlx::query_as(read)
                .bind(&claim_id)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            due
        }))
    }

    /// Records an attempt: the delivery row, the message's next step, the
    /// webhook's failure run, and (after failing too long) disables it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record_attempt(&self, r: &AttemptRecord) -> Result<()> {
        let d = &r.delivery;
        let (status, next_at, finished_at) = match r.next {
            NextStep::Delivered => ("delivered", d.at, Some(d.at)),
            NextStep::RetryAt(at) => ("pending", at, None),
            NextStep::GaveUp => ("failed", d.at, Some(d.at)),
        };
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&d.id)
            .bind(&d.webhook_id)
            .bind(&d.message_id)
            .bind(&d.event_id)
            .bind(&d.event_type)
            .bind(d.attempt)
            .bind(d.status_code)
            .bind(d.latency_ms)
            .bind(&d.error)
            .bind(d.at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_messages SET attempts = $1, status = $2, next_attempt_at = $3, finished_at = $4, \
                 claimed_until = NULL, claimed_by = NULL WHERE id = $5 AND status = 'pending'",
            )
            .bind(d.attempt)
            .bind(status)
            .bind(next_at)
            .bind(finished_at)
            .bind(&d.message_id)
            .execute(&mut *tx)
            .await?;
            if r.next == NextStep::Delivered {
                sqlx::query("UPDATE webhooks SET failing_since = NULL WHERE id = $1")
                    .bind(&d.webhook_id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, $1) WHERE id = $2",
                )
                .bind(d.at)
                .bind(&d.webhook_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(reason) = &r.disable {
                let disabled = sqlx::query(
                    "UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                     WHERE id = $3 AND enabled AND deleted_at IS NULL",
                )
                .bind(reason)
                .bind(d.at)
                .bind(&d.webhook_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if disabled == 1 {
                    write_effects!(tx, &r.effects);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes outbox events created before `before` once nothing about
    /// them is pending, with their messages and delivery log; returns how
    /// many events went.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn prune_webhook_events(&self, before: i64) -> Result<u64> {
        let old = "SELECT id FROM webhook_events e WHERE e.created_at < $1 AND e.fanned_out_at IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.event_id = e.id AND m.status = 'pending')";
        Ok(on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(&format!(
                "DELETE FROM webhook_deliveries WHERE event_id IN ({old})"
            ))
            .bind(before)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM webhook_messages WHERE event_id IN ({old})"
            ))
            .bind(before)
            .execute(&mut *tx)
            .await?;
            let gone = sqlx::query(&format!("DELETE FROM webhook_events WHERE id IN ({old})"))
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            gone
        }))
    }
}
