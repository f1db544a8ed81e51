//! Building and running the service: open storage, bootstrap on first
//! start, bind, serve until a shutdown signal, then flush what is pending;
//! and the background tasks of a running node (batched `last_used_at`
//! writes, other nodes' cache invalidations, signing-key reloads, OAuth2
//! refreshes, webhook deliveries, audit pruning, the rate limits' overrides
//! and Redis flushes).

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use gatehouse_core::validate::Email;
use gatehouse_store::Store;
use tokio::net::{TcpListener, TcpSocket};

use crate::{
    catalog::Catalog,
    config::Config,
    crypto::{Keyring, MasterKey, SigningKeys},
    http,
    service::{
        audit::run_pruner,
        bootstrap::{self, InitError, InitOutput},
        limits::Limiter,
        oauth2::{client::ProviderHttp, tokens::run_refresher},
        webhooks::delivery::{self, Worker},
        Parts, Services,
    },
    state::AppState,
    telemetry,
};

/// How often each node reloads the signing key set from the database.
const SIGNING_KEY_RELOAD: Duration = Duration::from_secs(30);
/// How often the metrics recorder folds waiting histogram samples into
/// their buckets.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The owner email of a zero-configuration first start.
pub const DEFAULT_OWNER_EMAIL: &str = "owner@gatehouse.local";

/// A built, bound, not yet running service.
pub struct App {
    listener: TcpListener,
    state: AppState,
    init: Option<InitOutput>,
}

/// Creates the data directory (0700) and loads or creates the master key.
pub fn prepare_data_dir(config: &Config) -> anyhow::Result<MasterKey> {
    if !config.data_dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    }
    MasterKey::load_or_create(config.master_key.as_ref(), &config.master_key_file)
}

/// Creates a SQLite database file 0600 before SQLite does (it would follow
/// the umask), and narrows an existing one to 0600; SQLite gives its WAL
/// and shared-memory files the database file's mode.
fn private_sqlite_file(database_url: &str) -> anyhow::Result<()> {
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(':') {
        return Ok(()); // in memory
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the database file {path}"))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {path} private (0600)"))?;
        for suffix in ["-wal", "-shm"] {
            let side = format!("{path}{suffix}");
            if std::path::Path::new(&side).exists() {
                std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {side} private (0600)"))?;
            }
        }
    }
    Ok(())
}

/// Opens (and migrates) the configured database.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    private_sqlite_file(&config.database_url)?;
    Store::open(&config.database_url).await.with_context(|| {
        format!(
            "opening the {} database",
            if config.database_url.starts_with("sqlite") {
                "SQLite"
            } else {
                "PostgreSQL"
            }
        )
    })
}

/// Connections the kernel completes and queues before the accept loop takes
/// them. Tokio's default (1024) overflows when a burst of connects arrives
/// while the loop's worker is busy for a few milliseconds, and a connect
/// whose handshake is dropped waits a second for its retransmission; the
/// kernel caps this at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets, so a restart rebinds at once).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl App {
    /// Opens storage, bootstraps an empty database, and binds the listener
    /// (`listen` port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener =
            listen(config.listen).with_context(|| format!("binding {}", config.listen))?;
        Self::build_on(config, listener).await
    }

    /// [`App::build`] on a listener bound already (when something must know
    /// the port before the service exists, as an OAuth2 provider must know
    /// its redirect URI).
    pub async fn build_on(mut config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let catalog = Catalog::with_additions(config.connection_types.clone())?;
        let master = prepare_data_dir(&config)?;
        let store = open_store(&config).await?;
        let addr = listener.local_addr()?;
        if config.listen.port() == 0 && config.public_url == "http://localhost:0" {
            config.public_url = format!("http://localhost:{}", addr.port());
        }
        let init = if store.installation().await?.is_none() {
            let email = Email::parse(DEFAULT_OWNER_EMAIL).map_err(anyhow::Error::msg)?;
            match bootstrap::init(&store, &config, &email).await {
                Ok(out) => Some(out),
                Err(InitError::AlreadyInitialised) => None,
                Err(InitError::Other(e)) => return Err(e),
            }
        } else {
            None
        };
        let keyring = Keyring::for_config(&master, &config)?;
        let signing = SigningKeys::load_or_create(&store, &keyring).await?;
        let webhook_worker = Worker::new(config.allow_private_webhook_targets)
            .context("building the webhook HTTP client")?;
        let limits = Limiter::new(config.rate_limits.clone(), config.redis_url.as_deref())?;
        limits.reload_overrides(&store).await;
        let services = Services::new(Parts {
            config,
            store,
            keyring,
            signing,
            catalog,
            oauth2_http: ProviderHttp::new().context("building the OAuth2 HTTP client")?,
            webhook_worker,
            limits,
        });
        let state = AppState::new(services, telemetry::metrics_handle());
        Ok(Self {
            listener,
            state,
            init,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The secrets of a bootstrap this start performed, once.
    pub fn take_init_output(&mut self) -> Option<InitOutput> {
        self.init.take()
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and
    /// flushes batched `last_used_at` updates.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let flush_every = Duration::from_secs(state.config().last_used_flush_seconds);
        let flusher = {
            let state = state.clone();
            tokio::spawn(async move { state.usage().run(state.store().clone(), flush_every).await })
        };
        let listener_task = spawn_invalidation_listener(state.clone()).await;
        let refresher = tokio::spawn(run_refresher(state.services().clone()));
        let deliveries = tokio::spawn(delivery::run(state.services().clone()));
        let pruner = tokio::spawn(run_pruner(state.services().clone()));
        let limiter = {
            let svc = state.services().clone();
            tokio::spawn(async move { svc.limits().run(svc.store().clone()).await })
        };
        let key_reloader = {
            let state = state.clone();
            tokio::spawn(async move {
                // Picks up `gatehouse keys rotate` run elsewhere, so this node
                // signs with the newest key and publishes every live one: at
                // once when the rotation is announced (PostgreSQL), and in
                // any case every `SIGNING_KEY_RELOAD`.
                let mut tick = tokio::time::interval(SIGNING_KEY_RELOAD);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = state.signing().rotated() => {}
                    }
                    if let Err(err) = state.signing().reload(state.store(), state.keyring()).await {
                        tracing::warn!(error = %err, "could not reload signing keys");
                    }
                    let now = gatehouse_core::time::now_ms() / 1000;
                    if let Err(err) = state
                        .store()
                        .purge_connect_revocations(now, 86_400 + 60)
                        .await
                    {
                        tracing::warn!(error = %err, "could not purge expired connect-token revocations");
                    }
                }
            })
        };
        let metrics_upkeep = {
            // Histogram samples wait in the recorder until upkeep folds them
            // into their buckets: without it, a node nobody scrapes would
            // keep every request's latency sample.
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(METRICS_UPKEEP);
                loop {
                    tick.tick().await;
                    state.metrics().run_upkeep();
                }
            })
        };
        let app = http::router(state.clone());
        tracing::info!(addr = %self.local_addr(), database = state.store().backend_name(), "gatehouse listening");
        let limits = http::server::Limits::of(state.config());
        let served = http::server::serve(self.listener, app, limits, shutdown).await;
        flusher.abort();
        key_reloader.abort();
        refresher.abort();
        deliveries.abort();
        pruner.abort();
        limiter.abort();
        metrics_upkeep.abort();
        state.limits().leave().await;
        if let Some(task) = listener_task {
            task.abort();
        }
        state.usage().flush(state.store()).await;
        state.store().close().await;
        tracing::info!("gatehouse stopped");
        served.context("serving HTTP")
    }
}

/// Listens for other nodes' cache invalidations (PostgreSQL only).
async fn spawn_invalidation_listener(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let mut listener = match state.store().invalidation_listener().await {
        Ok(Some(l)) => l,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(error = %err, "no invalidation listener; other nodes' revocations reach this node within the cache TTL");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            let heard = listener.next().await;
            state.apply(&heard);
        }
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining");
}
