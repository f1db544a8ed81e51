//! Several nodes on one PostgreSQL: a revocation made on one node reaches
//! every other node within a second (LISTEN/NOTIFY), although their caches
//! would otherwise keep the key for a minute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestData, TestServer};
use reqwest::StatusCode;
use serde_json::json;

/// Node B serves a key from its cache; node A revokes it; B refuses it
/// within 1 s. The same holds for role changes, which drop every entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_other_nodes() {
    let data = TestData::new(Backend::Postgres).await;
    let a = TestServer::start_with(data.clone(), |_| {}).await;
    let b = TestServer::start_with(data.clone(), |_| {}).await;
    assert!(b.boot.is_none(), "only the first node bootstraps");

    let (id, key) = a.create_key(a.key(), json!({"name": "shared"})).await;
    for _ in 0..3 {
        assert_eq!(b.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    }
    assert_eq!(
        a.delete(&format!("/v1/access-keys/{id}"), a.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        wait_for_status(&b, &key, StatusCode::UNAUTHORIZED).await,
        StatusCode::UNAUTHORIZED
    );

    let (user, pat) = a.member_with_pat("ops@example.com", "admin").await;
    assert_eq!(
        b.post("/v1/projects", &pat, json!({"name": "x"}))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = a
        .patch(
            &format!("/v1/organization/members/{user}"),
            &a.boot().pat,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut last = StatusCode::CREATED;
    while Instant::now() < deadline {
        last = b
            .post("/v1/projects", &pat, json!({"name": "y"}))
            .await
            .status;
        if last == StatusCode::FORBIDDEN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        last,
        StatusCode::FORBIDDEN,
        "the role change reached node B within 1 s"
    );
    b.stop().await;
    a.stop().await;
}

async fn wait_for_status(node: &TestServer, token: &str, want: StatusCode) -> StatusCode {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut last = StatusCode::OK;
    while Instant::now() < deadline {
        last = node.get("/v1/tokens/me", token).await.status;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    last
}
