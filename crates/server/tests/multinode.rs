//! Several nodes on one PostgreSQL: a revocation, a change to an end
//! user's connections or a signing-key rotation made on one node (or by
//! `gatehouse keys rotate`) reaches every other node within a second
//! (LISTEN/NOTIFY), although their caches would otherwise keep the old state
//! for a minute, and their keys until their next periodic reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestData, TestServer};
use gatehouse::crypto::SigningKeys;
use reqwest::{Method, StatusCode};
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

/// Node B serves an end user's requirements (and so their connections)
/// from its cache; node A connects the requirement, and later an operator
/// deletes the connection through node A: B shows each change within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_changes_reach_other_nodes() {
    const OPENAI: &str = "dynamiq.connections.OpenAI";
    let data = TestData::new(Backend::Postgres).await;
    // One deployment: the nodes share the public URL, the tokens' issuer.
    let public = |c: &mut gatehouse::config::Config| c.public_url = "http://gatehouse.test".into();
    let a = TestServer::start_with(data.clone(), public).await;
    let b = TestServer::start_with(data.clone(), public).await;
    let sandbox = a.boot().sandbox_id.clone();
    let (_, host) = a
        .deploy_app(
            &sandbox,
            "Shared",
            "private",
            json!([{"name": "openai", "type": "connection",
                    "spec": {"type": "connection", "data": {"type": OPENAI}}}]),
        )
        .await;
    let minted = a
        .call_host(
            &host,
            reqwest::Method::POST,
            "/v1/connect/tokens",
            Some(a.key()),
            Some(json!({"user_id": "ada"})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(requirement_status(&b, &token).await, "pending");
    }
    let req_id = {
        let r = a.get("/v1/connect/requirements", &token).await;
        r.body["data"][0]["id"].as_str().unwrap().to_string()
    };
    let submitted = a
        .post(
            &format!("/v1/connect/requirements/{req_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-test-0123456789"}}),
        )
        .await;
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.text);
    assert_eq!(
        requirement_status(&a, &token).await,
        "completed",
        "the writing node at once"
    );
    assert_eq!(
        wait_for_requirement(&b, &token, "completed").await,
        "completed",
        "the connection reached node B within 1 s"
    );

    let user = a
        .get(
            &format!("/v1/end-users/ada?environment_id={sandbox}"),
            a.key(),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    let conn_id = user.body["data"]["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = a
        .delete(
            &format!("/v1/end-users/ada/connections/{conn_id}?environment_id={sandbox}"),
            a.key(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_eq!(
        requirement_status(&a, &token).await,
        "pending",
        "the writing node at once"
    );
    assert_eq!(
        wait_for_requirement(&b, &token, "pending").await,
        "pending",
        "the deletion reached node B within 1 s"
    );
    b.stop().await;
    a.stop().await;
}

/// `gatehouse keys rotate` (the same library call) on a running cluster:
/// every node signs with the new key and publishes it within a second,
/// instead of at its next periodic reload, so a token minted by one node
/// right after a rotation verifies on every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_reaches_running_nodes() {
    let data = TestData::new(Backend::Postgres).await;
    let a = TestServer::start_with(data.clone(), |_| {}).await;
    let b = TestServer::start_with(data.clone(), |_| {}).await;
    let before = b.state.signing().active_kid();
    assert_eq!(a.state.signing().active_kid(), before);

    let kid = SigningKeys::rotate(a.state.store(), a.state.keyring())
        .await
        .unwrap();
    assert_ne!(kid, before);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline
        && [&a, &b]
            .iter()
            .any(|node| node.state.signing().active_kid() != kid)
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for node in [&a, &b] {
        assert_eq!(node.state.signing().active_kid(), kid, "within 1 s");
        let jwks = node
            .call(Method::GET, "/.well-known/jwks.json", None, None)
            .await
            .body;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [kid.as_str(), before.as_str()], "newest first");
    }
    b.stop().await;
    a.stop().await;
}

/// The status of the first requirement, as `node` shows it to `token`.
async fn requirement_status(node: &TestServer, token: &str) -> String {
    let r = node.get("/v1/connect/requirements", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"][0]["status"].as_str().unwrap().to_string()
}

/// Polls for up to 1 s until `node` shows `want`; the last status seen.
async fn wait_for_requirement(node: &TestServer, token: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let last = requirement_status(node, token).await;
        if last == want || Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
