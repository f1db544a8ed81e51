//! What a connect token may do, and when it stops (SPEC §6, §4): a public
//! app's token minted without a key is add-only; a token dies with the
//! access key that minted it (not with that key's expiry after a
//! rotation); deleting a project cuts its apps off at once, on every node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Reply, TestData, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    anonymous_public_tokens_are_add_only,
    tokens_die_with_the_key_that_minted_them,
    deleting_a_project_cuts_off_its_apps_on_every_node,
    redirect_origins_and_user_ids,
);

const OPENAI: &str = "dynamiq.connections.OpenAI";

fn requirement() -> Value {
    json!([{"name": "openai", "type": "connection",
            "spec": {"type": "connection", "data": {"type": OPENAI}}}])
}

async fn mint(s: &TestServer, host: &str, key: Option<&str>, user: &str) -> String {
    let r = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            key,
            Some(json!({"user_id": user})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

async fn requirement_id(s: &TestServer, token: &str) -> String {
    let r = s.get("/v1/connect/requirements", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"][0]["id"].as_str().unwrap().to_string()
}

async fn submit(s: &TestServer, token: &str, req: &str, api_key: &str) -> Reply {
    s.post(
        &format!("/v1/connect/requirements/{req}/credentials"),
        token,
        json!({"type": OPENAI, "config": {"api_key": api_key}}),
    )
    .await
}

/// The revealed OpenAI key of `user`.
async fn revealed(s: &TestServer, app_id: &str, user: &str) -> Value {
    let r = s
        .get(
            &format!("/v1/apps/{app_id}/end-users/{user}/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"][0]["config"]["api_key"].clone()
}

/// Anyone can mint a public app's token for any user id; such a token
/// connects what is not connected, but cannot replace or delete the
/// user's active connection. A token minted with a key can.
async fn anonymous_public_tokens_are_add_only(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (app_id, host) = s
        .deploy_app(&sandbox, "Open agent", "public", requirement())
        .await;

    // The user connects through the platform's page, with an anonymous token.
    let first = mint(&s, &host, None, "victim").await;
    let req = requirement_id(&s, &first).await;
    assert_eq!(
        submit(&s, &first, &req, "sk-victim-own").await.status,
        StatusCode::CREATED
    );

    // An attacker mints their own anonymous token for the same user id.
    let attacker = mint(&s, &host, None, "victim").await;
    let replaced = submit(&s, &attacker, &req, "sk-attacker").await;
    assert_eq!(replaced.status, StatusCode::FORBIDDEN, "{}", replaced.text);
    assert!(
        replaced.detail("token").unwrap().contains("access key"),
        "{}",
        replaced.text
    );
    let deleted = s
        .delete(
            &format!("/v1/connect/requirements/{req}/connection"),
            &attacker,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::FORBIDDEN, "{}", deleted.text);
    assert_eq!(revealed(&s, &app_id, "victim").await, "sk-victim-own");

    // A token the platform minted with its key may replace and delete.
    let trusted = mint(&s, &host, Some(s.key()), "victim").await;
    assert_eq!(
        submit(&s, &trusted, &req, "sk-victim-new").await.status,
        StatusCode::CREATED
    );
    assert_eq!(revealed(&s, &app_id, "victim").await, "sk-victim-new");
    let gone = s
        .delete(
            &format!("/v1/connect/requirements/{req}/connection"),
            &trusted,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    // With nothing connected, an anonymous token may connect again.
    assert_eq!(
        submit(&s, &attacker, &req, "sk-fresh").await.status,
        StatusCode::CREATED
    );
}

/// A token minted with a key stops working once that key is revoked; the
/// old key of a rotation keeps its tokens until it is revoked itself.
async fn tokens_die_with_the_key_that_minted_them(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (_, host) = s
        .deploy_app(&sandbox, "Keyed agent", "private", requirement())
        .await;
    let (key_id, key) = s
        .create_key(
            s.key(),
            json!({"name": "platform", "environment_id": sandbox, "scopes": ["connect:write"]}),
        )
        .await;
    let token = mint(&s, &host, Some(&key), "u-1").await;
    assert_eq!(
        s.get("/v1/connect/session", &token).await.status,
        StatusCode::OK
    );

    let rotated = s
        .post(
            &format!("/v1/access-keys/{key_id}/rotate"),
            s.key(),
            json!({"grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    let new_key = rotated.body["data"]["token"].as_str().unwrap().to_string();
    let new_id = rotated.body["data"]["id"].as_str().unwrap().to_string();
    let by_new = mint(&s, &host, Some(&new_key), "u-1").await;
    assert_eq!(
        s.get("/v1/connect/session", &token).await.status,
        StatusCode::OK,
        "rotation alone keeps the old key's tokens"
    );

    let revoked = s
        .delete(&format!("/v1/access-keys/{key_id}"), s.key())
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let dead = s.get("/v1/connect/session", &token).await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED, "{}", dead.text);
    assert_eq!(
        s.get("/v1/connect/session", &by_new).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{new_id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/v1/connect/session", &by_new).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Waits up to a second for `check` to hold.
async fn within_a_second(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// After a project is deleted its apps' hostnames answer 404, their
/// connect tokens 401 and the apps 404, on this node at once and on
/// another node (which had all of it cached) within a second.
async fn deleting_a_project_cuts_off_its_apps_on_every_node(backend: Backend) {
    let data = TestData::new(backend).await;
    // Nodes of one deployment share its public URL (the tokens' issuer).
    let shared = |c: &mut gatehouse::config::Config| c.public_url = "http://gatehouse.test".into();
    let a = TestServer::start_with(data.clone(), shared).await;
    let b = match backend {
        Backend::Postgres => Some(TestServer::start_with(data.clone(), shared).await),
        Backend::Sqlite => None,
    };
    let project = a
        .post("/v1/projects", a.key(), json!({"name": "Doomed"}))
        .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text);
    let env = common::environment_id(&project.body["data"], "sandbox");
    let project_id = project.body["data"]["id"].as_str().unwrap().to_string();
    let (app_id, host) = a
        .deploy_app(&env, "Doomed agent", "private", requirement())
        .await;
    let token = mint(&a, &host, Some(a.key()), "u-9").await;
    let req = requirement_id(&a, &token).await;
    assert_eq!(
        submit(&a, &token, &req, "sk-doomed").await.status,
        StatusCode::CREATED
    );
    let nodes: Vec<&TestServer> = std::iter::once(&a).chain(b.iter()).collect();
    for n in &nodes {
        // Everything cached on every node.
        assert_eq!(
            n.get("/v1/connect/session", &token).await.status,
            StatusCode::OK
        );
        let status = n
            .call_host(
                &host,
                Method::GET,
                "/v1/requirements/status?user_id=u-9",
                Some(a.key()),
                None,
            )
            .await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    }

    let gone = a
        .delete(&format!("/v1/projects/{project_id}"), a.key())
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    for n in &nodes {
        assert!(
            within_a_second(async || n.get("/v1/connect/session", &token).await.status
                == StatusCode::UNAUTHORIZED)
            .await,
            "the connect token still works"
        );
        let host_status = n
            .call_host(
                &host,
                Method::GET,
                "/v1/requirements/status?user_id=u-9",
                Some(a.key()),
                None,
            )
            .await;
        assert_eq!(
            host_status.status,
            StatusCode::NOT_FOUND,
            "{}",
            host_status.text
        );
        let submitted = submit(n, &token, &req, "sk-after").await;
        assert_eq!(submitted.status, StatusCode::UNAUTHORIZED);
        let reveal = n
            .get(
                &format!("/v1/apps/{app_id}/end-users/u-9/credentials"),
                a.key(),
            )
            .await;
        assert_eq!(reveal.status, StatusCode::NOT_FOUND, "{}", reveal.text);
        assert_eq!(
            n.get(&format!("/v1/apps/{app_id}"), a.key()).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

/// An app that lists `allowed_redirect_origins` accepts a token's
/// `redirect_url` only on them; user ids with invisible characters or
/// loose edges are refused, and one written two ways is one id.
async fn redirect_origins_and_user_ids(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (app_id, host) = s
        .deploy_app(&sandbox, "Redirecting", "public", requirement())
        .await;
    let patched = s
        .patch(
            &format!("/v1/apps/{app_id}"),
            s.key(),
            json!({"allowed_redirect_origins": ["https://App.Example.com/", "http://localhost:3000"]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        patched.body["data"]["allowed_redirect_origins"],
        json!(["https://app.example.com", "http://localhost:3000"])
    );
    let bad_origin = s
        .patch(
            &format!("/v1/apps/{app_id}"),
            s.key(),
            json!({"allowed_redirect_origins": ["https://x.example.com/path"]}),
        )
        .await;
    assert_eq!(bad_origin.status, StatusCode::BAD_REQUEST);
    assert!(bad_origin.detail("allowed_redirect_origins").is_some());

    let mint_with =
        |body: Value| s.call_host(&host, Method::POST, "/v1/connect/tokens", None, Some(body));
    let ok =
        mint_with(json!({"user_id": "u-1", "redirect_url": "https://app.example.com/done"})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let elsewhere =
        mint_with(json!({"user_id": "u-1", "redirect_url": "https://evil.example.net/phish"}))
            .await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(elsewhere
        .detail("redirect_url")
        .unwrap()
        .contains("allowed_redirect_origins"));
    let other_port =
        mint_with(json!({"user_id": "u-1", "redirect_url": "https://app.example.com:8443/done"}))
            .await;
    assert_eq!(other_port.status, StatusCode::BAD_REQUEST);
    // An empty list allows any https URL again.
    s.patch(
        &format!("/v1/apps/{app_id}"),
        s.key(),
        json!({"allowed_redirect_origins": []}),
    )
    .await;
    let any =
        mint_with(json!({"user_id": "u-1", "redirect_url": "https://elsewhere.example.org/"}))
            .await;
    assert_eq!(any.status, StatusCode::CREATED, "{}", any.text);

    for sneaky in ["ad\u{202e}nimda", "zero\u{200b}width", " padded", "padded "] {
        let r = mint_with(json!({"user_id": sneaky})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{sneaky:?}: {}", r.text);
        assert!(r.detail("user_id").is_some());
    }
    // Composed and decomposed "é": the same end user.
    for id in ["jos\u{e9}", "jose\u{301}"] {
        let token = mint(&s, &host, Some(s.key()), id).await;
        let session = s.get("/v1/connect/session", &token).await;
        assert_eq!(session.body["data"]["user_id"], "jos\u{e9}");
    }
    let users = s
        .get(&format!("/v1/end-users?environment_id={sandbox}"), s.key())
        .await;
    let ids: Vec<&str> = users.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("jos")).count(),
        1,
        "{ids:?}"
    );
}
