//! The HTTP/1.1 server: the accept loop and each connection's lifetime
//! (SPEC §10). A connection is closed when a request's headers take longer
//! than `header_read_timeout_seconds` from their first byte (slowloris), or
//! when it waits longer than `idle_timeout_seconds` for its next request;
//! a request (body included) gets `request_timeout_seconds` through
//! tower-http's timeout, mapped to the SPEC §2 envelope by the request
//! context. At `max_connections`, a new connection takes the place of the
//! open one that has waited longest on its client (idle, or still sending
//! a request's head): a flood of idle or slow connections cannot lock
//! others out. When every connection has a request in flight, a new one is
//! answered 503 with the envelope and closed, so the server keeps
//! answering the ones it has.
//! On shutdown it stops accepting, lets in-flight requests finish and
//! closes idle connections.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, Notify, OwnedSemaphorePermit, Semaphore},
};
use tower::ServiceExt;

use crate::config::Config;

/// How long shutdown waits for in-flight requests.
const DRAIN: Duration = Duration::from_secs(10);
/// Connections past the cap being given room or refused at once, at
/// most; beyond, the accept loop waits for one of them to be done (each
/// is within `ROOM_WAIT` and `REFUSAL_WRITE`), and the kernel's backlog
/// holds new connections meanwhile, so a burst of reconnects at the cap
/// delays a normal client instead of closing its connection unanswered.
const MAX_PENDING: usize = 256;
/// How long a connection past the cap waits for the room it made.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// How long writing a refusal may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// The 503 answer past `max_connections`.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 72\r\n\r\n\
{\"error\":{\"code\":\"service_unavailable\",\"message\":\"Service Unavailable\"}}";

/// The connection limits of `config`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(config: &Config) -> Self {
        Self {
            header_read: Duration::from_secs(config.header_read_timeout_seconds),
            idle: Duration::from_secs(config.idle_timeout_seconds),
            max_connections: config.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    let open = Arc::new(Registry::default());
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors or a connection reset before
                    // accept: wait a moment rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Conn {
            stream,
            peer,
            app: app.clone(),
            limits,
            stopped: stopped.clone(),
            open: open.clone(),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let permit = match pending.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => tokio::select! {
                    permit = pending.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => continue,
                    },
                    () = &mut shutdown => break,
                },
            };
            let slots = slots.clone();
            tokio::spawn(async move {
                // Make room: the connection waiting longest on its client
                // closes, and its slot comes to this one.
                if conn.open.evict_one() {
                    if let Ok(Ok(slot)) =
                        tokio::time::timeout(ROOM_WAIT, slots.acquire_owned()).await
                    {
                        drop(permit);
                        conn.run(slot).await;
                        return;
                    }
                }
                metrics::counter!("gatehouse_connections_refused_total").increment(1);
                refuse(conn.stream).await;
                drop(permit);
            });
            continue;
        };
        tokio::spawn(conn.run(slot));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    if tokio::time::timeout(DRAIN, stop.closed()).await.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

/// Answers 503 and closes.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await
    })
    .await;
}

/// An accepted connection, before it is served.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
    open: Arc<Registry>,
}

impl Conn {
    /// Enters the connection in the registry at once (so connections are
    /// known in the order they were accepted, however late their task
    /// runs) and returns what serves it in `slot` until it ends.
    fn run(self, slot: OwnedSemaphorePermit) -> impl Future<Output = ()> + Send + 'static {
        let activity = Arc::new(Activity::new());
        let id = self.open.insert(activity.clone());
        async move {
            let _ = self.stream.set_nodelay(true);
            connection(
                self.stream,
                self.peer,
                self.app,
                self.limits,
                self.stopped,
                activity,
            )
            .await;
            self.open.remove(id);
            drop(slot);
        }
    }
}

/// The open connections' activity, to find the one to close at the cap.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn insert(&self, activity: Arc<Activity>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, activity);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the connection that has waited longest on its client (no
    /// request in flight) to close; `false` when every one is busy.
    fn evict_one(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|a| !a.evicted.load(Ordering::Acquire))
            .filter_map(|a| a.waiting_since().map(|since| (since, a)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, activity)) => {
                activity.evicted.store(true, Ordering::Release);
                activity.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// What a connection is doing, for its watchdog. Times are milliseconds
/// since the connection was accepted.
struct Activity {
    start: Instant,
    /// Requests handed to the app and not answered yet.
    in_flight: AtomicU32,
    /// When the first byte of a request not yet handed to the app arrived
    /// (-1: none is arriving).
    head_since: AtomicI64,
    /// When the connection last became idle.
    idle_since: AtomicI64,
    /// Chosen to make room at the cap.
    evicted: AtomicBool,
    evict: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicU32::new(0),
            head_since: AtomicI64::new(-1),
            idle_since: AtomicI64::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    /// Since when the connection has waited on its client: for its next
    /// request, or for the rest of a request's head. `None` while a
    /// request is in flight.
    fn waiting_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Acquire);
        let since = if head >= 0 {
            head
        } else {
            self.idle_since.load(Ordering::Acquire)
        };
        Some(self.start + Duration::from_millis(since.max(0) as u64))
    }

    fn now(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    /// Bytes arrived.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) < 0
        {
            self.head_since.store(self.now(), Ordering::Release);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(-1, Ordering::Release);
    }

    fn request_done(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// `Err` when the connection is past a deadline; otherwise when to look
    /// again.
    fn check(&self, limits: &Limits) -> Result<Duration, &'static str> {
        let now = self.now();
        let left = |since: i64, limit: Duration| limit.as_millis() as i64 - (now - since);
        let next = if self.in_flight.load(Ordering::Acquire) > 0 {
            // The request timeout covers a request in flight.
            limits.header_read.as_millis() as i64
        } else {
            let head = self.head_since.load(Ordering::Acquire);
            if head >= 0 {
                let left = left(head, limits.header_read);
                if left <= 0 {
                    return Err("header_read_timeout");
                }
                left
            } else {
                let left = left(self.idle_since.load(Ordering::Acquire), limits.idle);
                if left <= 0 {
                    return Err("idle_timeout");
                }
                left
            }
        };
        // Look again at least every quarter of the header timeout, so a
        // request that starts while the connection sleeps towards its idle
        // deadline is still held to its own.
        let cap = (limits.header_read.as_millis() as i64 / 4).max(250);
        Ok(Duration::from_millis(next.clamp(1, cap) as u64))
    }
}

/// A socket that tells its connection's [`Activity`] when bytes arrive.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves one connection until it ends, times out, or shutdown completes.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    activity: Arc<Activity>,
) {
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        service_fn(move |mut req: Request<Incoming>| {
            activity.request_started();
            req.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().oneshot(req.map(axum::body::Body::new));
            let activity = activity.clone();
            async move {
                let response = answer.await;
                activity.request_done();
                response
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut draining = false;
    loop {
        let wait = match activity.check(&limits) {
            Ok(wait) => wait,
            Err(reason) => {
                metrics::counter!("gatehouse_connections_closed_total", "reason" => reason)
                    .increment(1);
                return;
            }
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = stopped.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(wait) => {}
            () = activity.evict.notified() => {
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    metrics::counter!("gatehouse_connections_closed_total", "reason" => "evicted")
                        .increment(1);
                    return;
                }
                // A request arrived meanwhile: it is served.
                activity.evicted.store(false, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal is the SPEC §2 envelope, with the length it announces.
    #[test]
    fn refusal_is_the_envelope() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "service_unavailable");
        assert_eq!(v["error"]["message"], "Service Unavailable");
    }

    /// Deadlines: header time counts from a request's first byte, idle
    /// time from the last answer.
    #[test]
    fn deadlines() {
        let limits = Limits {
            header_read: Duration::from_millis(40),
            idle: Duration::from_millis(80),
            max_connections: 1,
        };
        let a = Activity::new();
        assert!(a.check(&limits).is_ok());
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(a.check(&limits), Err("idle_timeout"));
        let b = Activity::new();
        b.read();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.check(&limits), Err("header_read_timeout"));
        let c = Activity::new();
        c.read();
        c.request_started();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            c.check(&limits).is_ok(),
            "a request in flight is the request timeout's"
        );
        c.request_done();
        assert!(c.check(&limits).is_ok());
    }
}
