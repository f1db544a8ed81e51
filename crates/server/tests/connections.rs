//! Connections cannot be held open for free (SPEC §10): a request whose
//! headers dribble in, a body that never finishes and an idle keep-alive
//! connection are each closed after their timeout; at `max_connections`
//! a new connection takes the place of the longest-waiting idle one, and
//! gets a 503 in the SPEC §2 envelope only when every open connection has
//! a request in flight, while the open ones keep being served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestData, TestServer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn server(tweak: impl FnOnce(&mut gatehouse::config::Config)) -> TestServer {
    TestServer::start_with(TestData::new(Backend::Sqlite).await, tweak).await
}

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes, which
/// fails the test); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Headers sent a byte at a time, forever: closed after the header timeout
/// even though bytes keep arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let s = server(|c| c.header_read_timeout_seconds = 1).await;
    let (mut reader, mut slow) = connect(&s).await.into_split();
    let started = Instant::now();
    let dribble = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
            .iter()
            .chain(b"a".repeat(1000).iter())
        {
            if slow.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = dribble => panic!("the server read 1000 slow header bytes without closing"),
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("no close within 20 s"),
                () = async {
            // The server closing shows up as a read of 0 (or a reset).
            let mut probe = [0u8; 64];
            while let Ok(n) = reader.read(&mut probe).await {
                if n == 0 {
                    break;
                }
            }
        } => {}
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout"
    );
}

/// A kept-alive connection is not held to the header timeout while it
/// waits, but is closed once idle for `idle_timeout_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let s = server(|c| {
        c.header_read_timeout_seconds = 1;
        c.idle_timeout_seconds = 3;
    })
    .await;
    let mut conn = connect(&s).await;
    conn.write_all(GET).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: still open, still served.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    conn.write_all(GET).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "a connection idle for less than idle_timeout is kept"
    );
    let idle_from = Instant::now();
    read_until_closed(&mut conn, Duration::from_secs(15)).await;
    assert!(
        idle_from.elapsed() >= Duration::from_millis(2500),
        "closed before the idle timeout"
    );
}

/// A body that stops half way gets a 408 in the envelope after
/// `request_timeout_seconds`, and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_times_out() {
    let s = server(|c| c.request_timeout_seconds = 2).await;
    let mut conn = connect(&s).await;
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": ",
        s.key()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut conn, Duration::from_secs(15)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], "request_timeout");
    assert_eq!(v["error"]["message"], "Request Timeout");
}

/// A request whose body is still arriving: in flight until it finishes.
/// It asks `Expect: 100-continue`, so the server's `100 Continue` says the
/// handler is reading the body: the request is in flight for certain.
async fn busy(s: &TestServer) -> TcpStream {
    let mut conn = connect(s).await;
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n",
        s.key()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("100 Continue")
            .unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    conn.write_all(b"{\"name\": ").await.unwrap();
    conn
}

/// At `max_connections` with a request in flight on every connection, a
/// new connection is answered 503 (envelope, `Retry-After`) and closed;
/// the open ones are served, and once one of them is only waiting for its
/// next request, a new connection takes its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_503() {
    let s = server(|c| c.max_connections = 4).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(busy(&s).await);
    }
    let mut extra = connect(&s).await;
    let answer = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["code"], "service_unavailable");

    // The open ones still work: the first finishes its request.
    let first = &mut open[0];
    first.write_all(b"\"P\"}       ").await.unwrap();
    let mut buf = [0u8; 4096];
    let n = first.read(&mut buf).await.unwrap();
    let answered = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answered.starts_with("HTTP/1.1 201"), "{answered}");

    // Now it only waits for its next request: a new connection gets its
    // slot, and it is closed.
    let mut again = connect(&s).await;
    again.write_all(GET).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), again.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert_eq!(
        read_until_closed(&mut open[0], Duration::from_secs(5)).await,
        "",
        "the idle connection made room"
    );
}

/// Idle connections cannot lock others out: at the cap, the one that has
/// waited longest makes room for the new one; the others stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_at_the_cap() {
    let s = server(|c| c.max_connections = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&s).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut buf = [0u8; 1024];
    for round in 0..3 {
        let mut fresh = connect(&s).await;
        fresh.write_all(GET).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), fresh.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "round {round}"
        );
        // The oldest idle one was closed: this round's victim.
        assert_eq!(
            read_until_closed(&mut open[round], Duration::from_secs(5)).await,
            ""
        );
        // The fresh connection is idle now too, and newest.
        open.push(fresh);
    }
    // The newest are still open and served.
    let last = open.last_mut().unwrap();
    last.write_all(GET).await.unwrap();
    let n = last.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
