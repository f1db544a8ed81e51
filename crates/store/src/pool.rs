//! The connection pool for either backend, opening and migrating it.

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

use crate::{batch::Batcher, cached::ConnectionsCache, error::Result};

/// Runs `$body` with `$p` bound to whichever pool `$store` holds. The body
/// is compiled once per backend, so a query that does not work on both
/// does not build.
#[macro_export]
#[doc(hidden)]
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::Backend::Sqlite($p) => $body,
            $crate::Backend::Postgres($p) => $body,
        }
    };
}

/// The open pool.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Gatehouse's storage. Cheap to clone (clones share the pool and the
/// connections cache).
#[derive(Debug, Clone)]
pub struct Store {
    pub pool: Backend,
    pub(crate) connections: Arc<ConnectionsCache>,
    pub(crate) batcher: Arc<Batcher>,
}

/// The SQLite pool's connections: each is a thread with its own page
/// cache and allocator arena (about 3 MiB under load), and SQLite has one
/// writer at a time, so more connections than the cores that can run them
/// add memory and thread switches, not throughput. Two per core the
/// process may run on, from 2 to 8.
fn sqlite_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cores.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .clamp(2, 8)
}

impl Store {
    /// Opens `database_url` (`sqlite://…` or `postgres://…`) and runs the
    /// embedded migrations.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn open(database_url: &str) -> Result<Self> {
        let pool = if database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
        {
            let options = PgConnectOptions::from_str(database_url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(database_url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // Each connection keeps its own page cache (SQLite's
                // default is 2 MiB): 512 KiB each holds the upper levels of
                // the indexes read per request, and bounds the pool's share
                // of the server's memory at 4 MiB at most; a page beyond it
                // is a read from the OS page cache (docs/decisions.md,
                // "Caches and performance").
                .pragma("cache_size", "-512");
            let pool = SqlitePoolOptions::new()
                .max_connections(sqlite_connections())
                // By default the pool pings an idle connection before
                // handing it out: with SQLite that is a round trip to the
                // connection's worker thread before every query, to check
                // a local file that cannot go away underneath it.
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Backend::Sqlite(pool)
        };
        Ok(Self {
            pool,
            connections: Arc::default(),
            batcher: Arc::default(),
        })
    }

    /// The SQLite URL for a database file inside `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("gatehouse.db").display())
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.pool {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// True when the database answers a trivial query.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn ping(&self) -> bool {
        on_pool!(self, |p| sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    /// Closes every connection.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}
