//! What a change causes besides itself, written in the change's own
//! transaction so that neither can happen without the other: its audit
//! events, and the webhook events it must announce (the outbox). A failed
//! write of either fails the change.

use crate::{audit::AuditEvent, error::Result, on_pool, Store};

/// An event for the environment's webhooks, waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// `evt_…`: also the `webhook-id` of every delivery of it.
    pub id: String,
    pub environment_id: String,
    /// e.g. `connection.created`.
    pub kind: String,
    /// The whole JSON body as delivered.
    pub body: String,
    pub created_at: i64,
}

/// The audit events and outbox events of one change.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub events: Vec<AuditEvent>,
    pub outbox: Vec<OutboxEvent>,
}

impl Effects {
    /// Just these audit events.
    pub fn audit(events: impl IntoIterator<Item = AuditEvent>) -> Self {
        Self {
            events: events.into_iter().collect(),
            outbox: Vec::new(),
        }
    }

    /// Adds an outbox event.
    pub fn announce(mut self, event: OutboxEvent) -> Self {
        self.outbox.push(event);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.outbox.is_empty()
    }
}

/// The insert of one [`OutboxEvent`] (`$o`), to execute on a transaction.
macro_rules! insert_outbox {
    ($o:expr) => {
        sqlx::query(
            "INSERT INTO webhook_events (id, environment_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&$o.id)
        .bind(&$o.environment_id)
        .bind(&$o.kind)
        .bind(&$o.body)
        .bind($o.created_at)
    };
}
pub(crate) use insert_outbox;

/// Writes `$effects` (an `&Effects`) inside the open transaction `$tx`.
macro_rules! write_effects {
    ($tx:expr, $effects:expr) => {{
        let effects: &$crate::effects::Effects = $effects;
        for e in &effects.events {
            $crate::audit::insert_event!(e).execute(&mut *$tx).await?;
        }
        for o in &effects.outbox {
            $crate::effects::insert_outbox!(o)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use write_effects;

impl Store {
    /// Writes effects that accompany no other change (a reveal, a failed
    /// sign-in, a failed OAuth2 callback), in one transaction.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record(&self, effects: &Effects) -> Result<()> {
        if effects.is_empty() {
            return Ok(());
        }
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            write_effects!(tx, effects);
            tx.commit().await?;
        });
        Ok(())
    }
}
