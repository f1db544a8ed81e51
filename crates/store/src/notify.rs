//! Cross-node cache invalidation. On PostgreSQL a revocation is announced
//! with `NOTIFY` and every node drops its cached copy when it hears it;
//! SQLite serves a single node, so there is nobody to tell.

use sqlx::postgres::PgListener;

use crate::{error::Result, Backend, Store};

/// The channel credential invalidations travel on.
pub const CHANNEL: &str = "gatehouse_invalidate";

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// Drop the entry for this token hash (hex).
    Credential(String),
    /// Drop everything (a role change, a removed member, a lost connection).
    All,
}

impl Store {
    /// Tells every other node to drop `payload` (`*` for everything).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn announce_invalidation(&self, payload: &str) -> Result<()> {
        if let Backend::Postgres(pool) = &self.pool {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A listener for other nodes' invalidations, on PostgreSQL.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn invalidation_listener(&self) -> Result<Option<InvalidationListener>> {
        match &self.pool {
            Backend::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANNEL).await?;
                Ok(Some(InvalidationListener { listener }))
            }
            Backend::Sqlite(_) => Ok(None),
        }
    }
}

/// Receives invalidations; reconnects by itself after a lost connection.
pub struct InvalidationListener {
    listener: PgListener,
}

impl InvalidationListener {
    /// The next invalidation. After a connection error (when notifications
    /// may have been missed) it answers [`Invalidation::All`].
    pub async fn next(&mut self) -> Invalidation {
        match self.listener.try_recv().await {
            Ok(Some(n)) if n.payload() != "*" => Invalidation::Credential(n.payload().to_string()),
            Ok(_) => Invalidation::All,
            Err(err) => {
                tracing::warn!(error = %err, "invalidation listener lost its connection");
                // Avoid a hot loop while the database is unreachable.
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                Invalidation::All
            }
        }
    }
}
