//! Client input must not grow the server's memory or reach the database
//! without bound (SPEC §8, §10): metric labels come from fixed sets, the
//! host cache holds only bounded names, and unknown tokens are remembered
//! so that guessing costs no database read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;

on_both_backends!(extension_methods_and_made_up_hosts_stay_out_of_memory,);

/// 200 requests with long extension methods leave no trace in `/metrics`;
/// hosts that cannot be an app's are neither looked up nor cached.
async fn extension_methods_and_made_up_hosts_stay_out_of_memory(backend: Backend) {
    let s = TestServer::start(backend).await;
    for i in 0..200 {
        let method =
            Method::from_bytes(format!("M{i:03}{}", "X".repeat(8_000)).as_bytes()).unwrap();
        let r = s.call(method, "/v1/tokens/me", Some(s.key()), None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
        assert_eq!(r.error_code(), "method_not_allowed");
    }
    let metrics = s.raw(Method::GET, "/metrics", &[], vec![]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        !metrics.text.contains("XXXXXXXX"),
        "a client's method became a label"
    );
    assert!(metrics.text.contains("method=\"other\""));
    assert!(
        !metrics.text.contains("status=\"405\""),
        "statuses are classes"
    );

    let http = reqwest::Client::new();
    for i in 0..100 {
        // Too long to be a hostname, not a DNS name, an IP literal: never
        // an app's, so never cached.
        for host in [
            format!("h{i}{}.example.com", "a".repeat(4_000)),
            format!("not_a_name{i}.example.com"),
            format!("10.0.{i}.1"),
        ] {
            let r = http
                .get(format!("{}/healthz", s.base))
                .header(reqwest::header::HOST, host)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
    assert_eq!(s.state.host_cache_entries(), 0);
    // A name under apps_domain is remembered as "no app".
    let r = http
        .get(format!("{}/healthz", s.base))
        .header(reqwest::header::HOST, "nothing-here.apps.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.state.host_cache_entries(), 1);
}

/// An unknown token with a valid checksum is answered from memory the next
/// time: with the database cut off it is still a 401, while a token never
/// seen needs the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_remembered() {
    let s = TestServer::start(Backend::Postgres).await;
    let prefixes = s.state.prefixes().clone();
    let forge = || gatehouse_core::token::generate(&prefixes, gatehouse_core::TokenKind::AccessKey);
    let seen = forge();
    let never = forge();
    let r = s.get("/v1/tokens/me", seen.token.expose_secret()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Cut the server off from its database.
    let db = s.data.pg.as_ref().unwrap().name.clone();
    let admin = sqlx::PgPool::connect(&common::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db)
        .execute(&admin)
        .await
        .unwrap();

    let again = s.get("/v1/tokens/me", seen.token.expose_secret()).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text);
    let fresh = s.get("/v1/tokens/me", never.token.expose_secret()).await;
    assert!(
        fresh.status.is_server_error(),
        "a new token needs the database: {}",
        fresh.status
    );

    sqlx::query(&format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await
        .unwrap();
}

/// `/metrics` answers on the management host only, behind `metrics_token`
/// when one is set; an id that is not UTF-8 gets the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_path_rejections() {
    let token = "metrics-token-0123456789";
    let s = TestServer::start_with(common::TestData::new(Backend::Sqlite).await, |c| {
        c.metrics_token = Some(token.to_string().into());
    })
    .await;
    let metrics = |t: Option<&'static str>| s.call(Method::GET, "/metrics", t, None);
    assert_eq!(metrics(None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        metrics(Some("wrong-token-0123456789")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let ok = metrics(Some(token)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.text.contains("gatehouse_http_requests_total"));

    let sandbox = s.boot().sandbox_id.clone();
    let (_, host) = s
        .deploy_app(&sandbox, "Metrics host", "public", serde_json::json!([]))
        .await;
    let on_app = s
        .call_host(&host, Method::GET, "/metrics", Some(token), None)
        .await;
    assert_eq!(on_app.status, StatusCode::NOT_FOUND, "{}", on_app.text);
    assert_eq!(on_app.error_code(), "not_found");

    let bad = s.get("/v1/access-keys/%FF%FE", s.key()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.error_code(), "bad_request");
    assert!(
        bad.detail("path").unwrap().contains("UTF-8"),
        "{}",
        bad.text
    );
}

/// The SQLite file is private (0600) even when the data dir already
/// exists, and an existing one is narrowed to 0600.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let data = common::TestData::new(Backend::Sqlite).await;
    let db = data.dir.path().join("gatehouse.db");
    let s = TestServer::start_with(data.clone(), |_| {}).await;
    assert_eq!(s.get("/v1/tokens/me", s.key()).await.status, StatusCode::OK);
    for file in [db.clone(), data.dir.path().join("gatehouse.db-wal")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
    s.stop().await;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = TestServer::start_with(data.clone(), |_| {}).await;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    again.stop().await;
}

/// Behind trusted proxies the client is the right-most forwarded address
/// that is not a proxy: an address a client writes into `X-Forwarded-For`
/// itself changes neither its sign-in limit nor the audit trail, and a
/// peer that is not a trusted proxy is not believed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let s = TestServer::start_with(common::TestData::new(Backend::Sqlite).await, |c| {
        c.trust_forwarded_headers = true;
        c.trusted_proxies =
            gatehouse_core::forwarded::TrustedProxies::parse(&["127.0.0.0/8"]).unwrap();
    })
    .await;
    // Each request claims another origin on the left; the proxy on
    // loopback appended the real one.
    for i in 0..3 {
        let forged = format!("198.51.100.{i}, 203.0.113.5");
        let r = s
            .raw(
                Method::GET,
                "/v1/tokens/me",
                &[
                    ("authorization", &format!("Bearer {}", s.key())),
                    ("x-forwarded-for", &forged),
                ],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let made = s
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[
                ("authorization", &format!("Bearer {}", s.key())),
                ("x-forwarded-for", "6.6.6.6, 203.0.113.5"),
                ("content-type", "application/json"),
            ],
            br#"{"name": "via proxy"}"#.to_vec(),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let id = made.body["data"]["id"].as_str().unwrap().to_string();
    let events = s
        .get(&format!("/v1/audit-events?target_id={id}"), s.key())
        .await;
    assert_eq!(
        events.body["data"][0]["ip"], "203.0.113.5",
        "{}",
        events.text
    );
    // Sign-in attempts count against the real client, whatever it forges.
    let mut statuses = Vec::new();
    for i in 0..11 {
        let forged = format!("198.51.100.{i}, 203.0.113.5");
        let r = s
            .raw(
                Method::POST,
                "/login",
                &[
                    ("x-forwarded-for", &forged),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                b"email=a%40example.com&password=wrong-password-1&csrf=x".to_vec(),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // An untrusted peer: its header is ignored.
    let direct = TestServer::start_with(common::TestData::new(Backend::Sqlite).await, |c| {
        c.trust_forwarded_headers = true;
        c.trusted_proxies =
            gatehouse_core::forwarded::TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    })
    .await;
    let made = direct
        .raw(
            Method::POST,
            "/v1/access-keys",
            &[
                ("authorization", &format!("Bearer {}", direct.key())),
                ("x-forwarded-for", "203.0.113.5"),
                ("x-forwarded-host", "evil.example.com"),
                ("content-type", "application/json"),
            ],
            br#"{"name": "direct"}"#.to_vec(),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let id = made.body["data"]["id"].as_str().unwrap().to_string();
    let events = direct
        .get(&format!("/v1/audit-events?target_id={id}"), direct.key())
        .await;
    assert_eq!(events.body["data"][0]["ip"], "127.0.0.1");
}
