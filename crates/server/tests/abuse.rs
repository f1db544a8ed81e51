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
