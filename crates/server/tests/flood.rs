//! A connection flood against the real binary with its default limits
//! (SPEC §10: `max_connections` 10000, header and idle timeouts): 10,000
//! idle connections and a set of slowloris connections dribbling their
//! headers are held open while a normal client keeps making requests.
//! Every one of its requests must be answered within a second (the bound
//! the hardening issue names), and the server's resident memory must stay
//! within a fixed budget per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const IDLE: usize = 10_000;
const SLOWLORIS: usize = 300;
/// How long the normal client keeps asking while the flood is held.
/// Longer than the default header timeout (10 s), so the server cuts the
/// slowloris connections off while the client is asking.
const HOLD: Duration = Duration::from_secs(12);
/// The answer time the normal client is promised.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// Resident memory the flood may add: a connection waiting on its client
/// costs a task, a socket and hyper's buffers (a few KiB); 24 KiB each
/// leaves room for the allocator and still catches a per-connection leak
/// or an unbounded buffer.
const BUDGET_PER_CONNECTION: u64 = 24 * 1024;

struct Server {
    child: Child,
    addr: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The binary with zero configuration but a free port and a data dir.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--listen", &addr])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads all of stdout, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.trim().strip_prefix("access key") {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let key = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the first start prints an access key");
        Self {
            child,
            addr,
            key,
            _dir: dir,
        }
    }

    /// Resident memory, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .to_string();
        let kib: u64 = line
            .trim_start_matches("VmRSS:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kib * 1024
    }

    /// Open descriptors: the connections the server holds.
    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }
}

/// One request on a new connection; the status line, or why it failed.
async fn request(addr: &str, path: &str, key: &str) -> Result<String, String> {
    let mut conn = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Opens `n` connections, `batch` at a time.
async fn open(addr: &str, n: usize, batch: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let take = batch.min(n - all.len());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..take {
            let addr = addr.to_string();
            set.spawn(async move { TcpStream::connect(addr).await });
        }
        while let Some(conn) = set.join_next().await {
            all.push(conn.unwrap().expect("the server accepts connections"));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_slow_connections_does_not_stop_normal_requests() {
    let limit = rlimit_nofile();
    assert!(
        limit > (IDLE + SLOWLORIS + 500) as u64,
        "this test needs {} descriptors (ulimit -n is {limit})",
        IDLE + SLOWLORIS + 500
    );
    let server = tokio::task::spawn_blocking(Server::start).await.unwrap();
    let addr = server.addr.clone();
    let key = server.key.clone();
    // Warm up the paths the normal client uses.
    for _ in 0..20 {
        assert_eq!(
            request(&addr, "/v1/tokens/me", &key).await.unwrap(),
            "HTTP/1.1 200 OK"
        );
    }
    let before = server.rss();
    let fds_before = server.descriptors();

    let idle = open(&addr, IDLE, 500).await;
    // Slowloris: headers that never end, a byte at a time; the server cuts
    // each off after its header timeout, and they come back.
    let stop = tokio::sync::watch::channel(false);
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..SLOWLORIS {
        let addr = addr.clone();
        let mut stopped = stop.1.clone();
        slow.spawn(async move {
            let mut reconnects = 0u32;
            'outer: loop {
                let Ok(mut conn) = TcpStream::connect(&addr).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                if conn
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                    .await
                    .is_err()
                {
                    reconnects += 1;
                    continue;
                }
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break 'outer,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    if conn.write_all(b"a").await.is_err() {
                        reconnects += 1;
                        continue 'outer;
                    }
                }
            }
            reconnects
        });
    }
    // The kernel completes the connects before the server accepts them:
    // watch its descriptors until it holds (nearly) all of them, for at
    // most 5 s, well inside the 60 s idle timeout that later closes them.
    // A loaded machine may be slow to accept; one that sheds idle
    // connections never gets there.
    let mut fds_flooded = 0;
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(5) {
        fds_flooded = fds_flooded.max(server.descriptors());
        if fds_flooded + IDLE / 50 >= fds_before + IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fds_flooded + IDLE / 50 >= fds_before + IDLE,
        "the server holds the flood: {fds_before} descriptors before, at most {fds_flooded} during"
    );

    // The normal client: fresh connections, each request answered within
    // a second, for the whole hold.
    let mut peak = server.rss();
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < HOLD {
        for path in ["/healthz", "/v1/tokens/me"] {
            let t = Instant::now();
            let status = tokio::time::timeout(ANSWER_WITHIN, request(&addr, path, &key))
                .await
                .unwrap_or_else(|_| {
                    panic!("{path} unanswered within {ANSWER_WITHIN:?} during the flood")
                });
            assert_eq!(
                status.as_deref(),
                Ok("HTTP/1.1 200 OK"),
                "{path} during the flood"
            );
            slowest = slowest.max(t.elapsed());
            answered += 1;
        }
        peak = peak.max(server.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.0.send(true);
    let mut reconnects = 0;
    while let Some(n) = slow.join_next().await {
        reconnects += n.unwrap();
    }
    drop(idle);

    let added = peak.saturating_sub(before);
    let budget = BUDGET_PER_CONNECTION * (IDLE + SLOWLORIS) as u64;
    eprintln!(
        "flood: {answered} requests answered, slowest {slowest:?}; RSS {} MiB before, \
         {} MiB peak (+{} KiB per connection); {fds_flooded} descriptors; \
         {reconnects} slowloris reconnects",
        before >> 20,
        peak >> 20,
        added / 1024 / (IDLE + SLOWLORIS) as u64
    );
    assert!(
        added <= budget,
        "the flood added {} MiB of RSS, over the {} MiB budget",
        added >> 20,
        budget >> 20
    );
    assert!(answered >= 20, "the normal client made too few requests");
}

/// The soft limit on open descriptors of this process.
fn rlimit_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}
