//! Webhooks (SPEC §9), end to end on SQLite and PostgreSQL, against a real
//! receiver that checks every signature with the Standard Webhooks
//! reference library (`tests/webhook-receiver`): the API and its rules,
//! events and their bodies, retries with the same id, manual retry,
//! disabling after 3 days of failures, private targets, one delivery per
//! event across two nodes, and delivery after the server is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/process.rs"]
mod process;
#[path = "common/webhooks.rs"]
mod receiver;

use std::{collections::HashMap, time::Duration};

use common::{Backend, TestData, TestServer};
use process::Serve;
use receiver::{Received, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    webhook_api_and_rules,
    connection_events_are_signed_and_delivered,
    failures_are_retried_with_the_same_id,
    access_key_revoked_reaches_every_environment,
    failing_for_three_days_disables,
    one_delivery_per_event_across_nodes,
    delivered_after_sigkill,
);

const OPENAI: &str = "dynamiq.connections.OpenAI";
const WAIT: Duration = Duration::from_secs(20);

fn openai_requirement() -> Value {
    json!([{"name": "openai", "type": "connection",
            "spec": {"type": "connection", "data": {"type": OPENAI}}}])
}

/// A server whose webhooks may target this machine, retrying after 1 s.
async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(TestData::new(backend).await, |c| {
        c.allow_private_webhook_targets = true;
        c.webhook_retry_schedule_seconds = vec![1, 1, 1, 1];
    })
    .await
}

/// Creates a webhook; returns (id, secret).
async fn create_webhook(s: &TestServer, env: &str, url: &str, events: &[&str]) -> (String, String) {
    let r = s
        .post(
            "/v1/webhooks",
            s.key(),
            json!({"environment_id": env, "url": url, "events": events}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["data"]["id"].as_str().unwrap().to_string(),
        r.body["data"]["secret"].as_str().unwrap().to_string(),
    )
}

/// Connects `user` to the app's OpenAI requirement through a connect
/// token: the connection's id.
async fn connect(s: &TestServer, host: &str, user: &str) -> String {
    let env = s.boot().sandbox_id.clone();
    let minted = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": user})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    let reqs = s.get("/v1/connect/requirements", &token).await;
    let req_id = reqs.body["data"][0]["id"].as_str().unwrap().to_string();
    let done = s
        .post(
            &format!("/v1/connect/requirements/{req_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-webhook-test-1"}}),
        )
        .await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.text);
    let user = s
        .get(
            &format!("/v1/end-users/{user}?environment_id={env}"),
            s.key(),
        )
        .await;
    user.body["data"]["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn of_type<'a>(got: &'a [Received], kind: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.json()["type"] == kind).collect()
}

async fn audit_actions(s: &TestServer) -> Vec<String> {
    let events = s.get("/v1/audit-events?page_size=200", s.key()).await;
    events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

/// Create, list, show, change, rotate, delete; every rule of the input;
/// the secret shown only when made; private targets refused by default;
/// permissions; audit events.
async fn webhook_api_and_rules(backend: Backend) {
    let data = TestData::new(backend).await;
    let s = TestServer::start_with(data, |_| {}).await;
    let sandbox = s.boot().sandbox_id.clone();
    let live = s.boot().live_id.clone();

    // Private and loopback targets are refused unless allowed.
    for url in [
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://[::1]/",
        "http://10.0.0.7/",
        "http://169.254.169.254/latest",
    ] {
        let r = s
            .post(
                "/v1/webhooks",
                s.key(),
                json!({"environment_id": sandbox, "url": url, "events": ["connection.created"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert!(r.detail("url").unwrap().contains("private"), "{}", r.text);
    }
    for (body, field) in [
        (
            json!({"environment_id": sandbox, "events": ["connection.created"]}),
            "url",
        ),
        (
            json!({"environment_id": sandbox, "url": "ftp://example.com/", "events": ["connection.created"]}),
            "url",
        ),
        (
            json!({"environment_id": sandbox, "url": "https://u:p@example.com/", "events": ["connection.created"]}),
            "url",
        ),
        (
            json!({"environment_id": sandbox, "url": "https://example.com/"}),
            "events",
        ),
        (
            json!({"environment_id": sandbox, "url": "https://example.com/", "events": []}),
            "events",
        ),
        (
            json!({"environment_id": sandbox, "url": "https://example.com/", "events": ["connection.nope"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": ["connection.created"]}),
            "environment_id",
        ),
    ] {
        let r = s.post("/v1/webhooks", s.key(), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(r.detail(field).is_some(), "{field} in {}", r.text);
    }

    // A public target (nothing is sent to it in this test).
    let created = s
        .post(
            "/v1/webhooks",
            s.key(),
            json!({"environment_id": sandbox, "url": "https://hooks.example.com/gatehouse",
                   "events": ["access_key.revoked", "connection.created", "connection.created"],
                   "description": "billing"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let hook = &created.body["data"];
    let id = hook["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("whk_"));
    assert_eq!(
        hook["events"],
        json!(["connection.created", "access_key.revoked"])
    );
    assert_eq!(hook["enabled"], true);
    assert_eq!(hook["environment_id"], sandbox.as_str());
    let secret = hook["secret"].as_str().unwrap().to_string();
    let raw = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap();
    assert_eq!(bytes.len(), 32);

    let shown = s.get(&format!("/v1/webhooks/{id}"), s.key()).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body["data"].get("secret").is_none());
    assert!(!shown.text.contains(raw));
    let listed = s.get("/v1/webhooks", s.key()).await;
    assert_eq!(listed.body["pagination"]["total_count"], 1);
    assert!(!listed.text.contains(raw));
    let in_live = s
        .get(&format!("/v1/webhooks?environment_id={live}"), s.key())
        .await;
    assert_eq!(in_live.body["data"].as_array().unwrap().len(), 0);

    let changed = s
        .patch(
            &format!("/v1/webhooks/{id}"),
            s.key(),
            json!({"url": "https://hooks.example.com/in", "events": ["connection.deleted"], "enabled": false}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["data"]["url"], "https://hooks.example.com/in");
    assert_eq!(
        changed.body["data"]["events"],
        json!(["connection.deleted"])
    );
    assert_eq!(changed.body["data"]["enabled"], false);
    let private = s
        .patch(
            &format!("/v1/webhooks/{id}"),
            s.key(),
            json!({"url": "http://127.0.0.1/"}),
        )
        .await;
    assert_eq!(private.status, StatusCode::BAD_REQUEST);

    let rotated = s
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            s.key(),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.body["data"]["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(rotated.body["data"]["previous_secret_expires_at"].is_string());

    // Reach: a key of the live environment sees nothing of the sandbox.
    let (_, live_key) = s
        .create_key(
            s.key(),
            json!({"name": "live hooks", "environment_id": live, "scopes": ["webhooks:read", "webhooks:write"]}),
        )
        .await;
    let hidden = s.get(&format!("/v1/webhooks/{id}"), &live_key).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let none = s.get("/v1/webhooks", &live_key).await;
    assert_eq!(none.body["data"].as_array().unwrap().len(), 0);
    // Scope: webhooks:read cannot write.
    let (_, reader) = s
        .create_key(
            s.key(),
            json!({"name": "reader", "scopes": ["webhooks:read"]}),
        )
        .await;
    let refused = s
        .post(
            "/v1/webhooks",
            &reader,
            json!({"environment_id": sandbox, "url": "https://hooks.example.com/", "events": ["connection.created"]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get(&format!("/v1/webhooks/{id}"), &reader).await.status,
        StatusCode::OK
    );

    let deliveries = s
        .get(&format!("/v1/webhooks/{id}/deliveries"), s.key())
        .await;
    assert_eq!(deliveries.status, StatusCode::OK);
    assert_eq!(deliveries.body["data"], json!([]));
    let unknown = s
        .post(
            &format!("/v1/webhooks/{id}/deliveries/whd_01aaaaaaaaaaaaaaaaaaaaaaaa/retry"),
            s.key(),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let gone = s.delete(&format!("/v1/webhooks/{id}"), s.key()).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&format!("/v1/webhooks/{id}"), s.key()).await.status,
        StatusCode::NOT_FOUND
    );

    let actions = audit_actions(&s).await;
    for a in [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.deleted",
    ] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
    let events = s.get("/v1/audit-events?page_size=200", s.key()).await;
    assert!(!events.text.contains(raw) && !events.text.contains(new_secret));
}

/// `connection.created`, `requirements.completed` and `connection.deleted`
/// reach the environment's webhook with valid signatures and the SPEC
/// bodies; each attempt is in the delivery log.
async fn connection_events_are_signed_and_delivered(backend: Backend) {
    let s = server(backend).await;
    let rx = Receiver::start();
    let sandbox = s.boot().sandbox_id.clone();
    let (hook_id, secret) = create_webhook(
        &s,
        &sandbox,
        &rx.url("/hooks/sandbox"),
        &[
            "connection.created",
            "connection.deleted",
            "requirements.completed",
        ],
    )
    .await;
    rx.set(&[&secret], 0).await;
    let (app_id, host) = s
        .deploy_app(&sandbox, "Hooked agent", "private", openai_requirement())
        .await;
    let conn_id = connect(&s, &host, "customer-1").await;

    let got = rx
        .wait_until(WAIT, |got| {
            !of_type(got, "connection.created").is_empty()
                && !of_type(got, "requirements.completed").is_empty()
        })
        .await;
    for r in &got {
        assert!(r.verified, "standardwebhooks rejected {r:?}");
        assert_eq!(r.path, "/hooks/sandbox");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let body = r.json();
        assert_eq!(r.webhook_id.as_deref(), body["id"].as_str());
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(body["environment_id"], sandbox.as_str());
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(!r.body.contains("sk-webhook-test-1"));
    }
    let created = of_type(&got, "connection.created")[0].json();
    assert_eq!(
        created["data"],
        json!({"app_id": app_id, "user_id": "customer-1", "requirement_name": "openai", "connection_id": conn_id})
    );
    let completed = of_type(&got, "requirements.completed")[0].json();
    assert_eq!(
        completed["data"],
        json!({"app_id": app_id, "user_id": "customer-1"})
    );

    let deleted = s
        .delete(
            &format!("/v1/end-users/customer-1/connections/{conn_id}?environment_id={sandbox}"),
            s.key(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let got = rx
        .wait_until(WAIT, |got| !of_type(got, "connection.deleted").is_empty())
        .await;
    let gone = of_type(&got, "connection.deleted")[0];
    assert!(gone.verified);
    assert_eq!(gone.json()["data"]["connection_id"], conn_id.as_str());

    let log = s
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"), s.key())
        .await;
    let rows = log.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", log.text);
    assert_eq!(rows[0]["event_type"], "connection.deleted", "newest first");
    for row in rows {
        assert!(row["id"].as_str().unwrap().starts_with("whd_"));
        assert_eq!(row["attempt"], 1, "{}", log.text);
        assert_eq!(row["status_code"], 204, "{}", log.text);
        assert_eq!(row["error"], Value::Null, "{}", log.text);
        assert!(row["latency_ms"].is_number());
    }
}

/// A receiver that fails 3 times gets the event exactly once more, with
/// the same `webhook-id` on every attempt; a manual retry sends it again.
async fn failures_are_retried_with_the_same_id(backend: Backend) {
    let s = server(backend).await;
    let rx = Receiver::start();
    let sandbox = s.boot().sandbox_id.clone();
    let (hook_id, secret) =
        create_webhook(&s, &sandbox, &rx.url("/flaky"), &["connection.created"]).await;
    rx.set(&[&secret], 3).await;
    let (_, host) = s
        .deploy_app(&sandbox, "Flaky", "private", openai_requirement())
        .await;
    connect(&s, &host, "customer-2").await;

    let got = rx
        .wait_until(WAIT, |got| got.iter().any(|r| r.answered == 204))
        .await;
    // Nothing more arrives once it succeeded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got_later = rx.received().await;
    assert_eq!(got_later.len(), got.len(), "no delivery after the success");
    assert_eq!(got.len(), 4, "{got:#?}");
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, vec![500, 500, 500, 204]);
    let id = got[0].webhook_id.clone().unwrap();
    assert!(got.iter().all(|r| r.webhook_id.as_deref() == Some(&id)));
    assert!(got.iter().all(|r| r.verified));

    let log = s
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"), s.key())
        .await;
    let rows = log.body["data"].as_array().unwrap();
    let attempts: Vec<i64> = rows
        .iter()
        .map(|r| r["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, vec![4, 3, 2, 1]);
    assert_eq!(rows[0]["status_code"], 204);
    assert_eq!(rows[1]["status_code"], 500);
    assert!(rows[1]["error"].as_str().unwrap().contains("500"));
    assert!(rows.iter().all(|r| r["event_id"] == id.as_str()));

    let retried = s
        .post(
            &format!(
                "/v1/webhooks/{hook_id}/deliveries/{}/retry",
                rows[3]["id"].as_str().unwrap()
            ),
            s.key(),
            json!({}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    assert_eq!(retried.body["data"]["event_id"], id.as_str());
    let again = rx.wait_until(WAIT, |got| got.len() == 5).await;
    assert_eq!(again[4].webhook_id.as_deref(), Some(id.as_str()));
    assert!(again[4].verified);
    let log = s
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"), s.key())
        .await;
    assert_eq!(log.body["data"][0]["attempt"], 5);
    assert!(audit_actions(&s)
        .await
        .contains(&"webhook_delivery.retried".to_string()));
}

/// `access_key.revoked` of an organization-wide key goes to the webhooks of
/// every environment it reached, each naming its environment; a sandbox
/// key's revocation reaches the sandbox only.
async fn access_key_revoked_reaches_every_environment(backend: Backend) {
    let s = server(backend).await;
    let rx = Receiver::start();
    let sandbox = s.boot().sandbox_id.clone();
    let live = s.boot().live_id.clone();
    let (_, sandbox_secret) =
        create_webhook(&s, &sandbox, &rx.url("/sandbox"), &["access_key.revoked"]).await;
    let (_, live_secret) =
        create_webhook(&s, &live, &rx.url("/live"), &["access_key.revoked"]).await;
    rx.set(&[&sandbox_secret, &live_secret], 0).await;

    let (org_key, _) = s
        .create_key(
            s.key(),
            json!({"name": "org wide", "scopes": ["apps:read"]}),
        )
        .await;
    let (sandbox_key, _) = s
        .create_key(
            s.key(),
            json!({"name": "sandbox only", "environment_id": sandbox, "scopes": ["apps:read"]}),
        )
        .await;
    for id in [&org_key, &sandbox_key] {
        let r = s.delete(&format!("/v1/access-keys/{id}"), s.key()).await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let got = rx.wait_until(WAIT, |got| got.len() >= 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_later = rx.received().await;
    assert_eq!(got_later.len(), 3, "{got_later:#?}");
    let mut seen: HashMap<(String, String), Value> = HashMap::new();
    for r in &got {
        assert!(r.verified);
        let body = r.json();
        assert_eq!(body["type"], "access_key.revoked");
        assert_eq!(body["data"]["reason"], "revoked");
        let env = body["environment_id"].as_str().unwrap().to_string();
        let expected_path = if env == sandbox { "/sandbox" } else { "/live" };
        assert_eq!(
            r.path, expected_path,
            "delivered to its environment's webhook"
        );
        let key = body["data"]["access_key_id"].as_str().unwrap().to_string();
        seen.insert((key, env), body);
    }
    assert!(seen.contains_key(&(org_key.clone(), sandbox.clone())));
    assert!(seen.contains_key(&(org_key.clone(), live.clone())));
    assert!(seen.contains_key(&(sandbox_key.clone(), sandbox.clone())));
    assert!(!seen.contains_key(&(sandbox_key.clone(), live.clone())));
}

/// A webhook whose deliveries have all failed for 3 days is disabled by
/// the next failure, with an audit event; enabling it again clears that.
async fn failing_for_three_days_disables(backend: Backend) {
    let s = server(backend).await;
    let rx = Receiver::start();
    let sandbox = s.boot().sandbox_id.clone();
    let (hook_id, secret) =
        create_webhook(&s, &sandbox, &rx.url("/down"), &["access_key.revoked"]).await;
    rx.set(&[&secret], 1000).await;
    // The webhook's failures began three days and a minute ago.
    let three_days_ago = gatehouse_core::time::now_ms() - 3 * 86_400_000 - 60_000;
    gatehouse_store::on_pool!(s.state.store(), |p| {
        sqlx::query("UPDATE webhooks SET failing_since = $1 WHERE id = $2")
            .bind(three_days_ago)
            .bind(&hook_id)
            .execute(p)
            .await
            .unwrap();
    });
    let (key, _) = s
        .create_key(s.key(), json!({"name": "k", "environment_id": sandbox}))
        .await;
    s.delete(&format!("/v1/access-keys/{key}"), s.key()).await;
    rx.wait_until(WAIT, |got| !got.is_empty()).await;
    let mut hook = Value::Null;
    for _ in 0..100 {
        hook = s
            .get(&format!("/v1/webhooks/{hook_id}"), s.key())
            .await
            .body;
        if hook["data"]["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hook["data"]["enabled"], false, "{hook}");
    assert!(hook["data"]["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("failed"));
    let events = s
        .get("/v1/audit-events?action=webhook.disabled", s.key())
        .await;
    let rows = events.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", events.text);
    assert_eq!(rows[0]["actor"]["kind"], "system");
    assert_eq!(rows[0]["target"]["id"], hook_id.as_str());
    // Disabled: nothing more is attempted.
    let before = rx.received().await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.received().await.len(), before);

    let enabled = s
        .patch(
            &format!("/v1/webhooks/{hook_id}"),
            s.key(),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(enabled.body["data"]["enabled"], true);
    assert_eq!(enabled.body["data"]["disabled_reason"], Value::Null);
}

/// Two nodes on one PostgreSQL database (or one SQLite file) deliver each
/// event once between them.
async fn one_delivery_per_event_across_nodes(backend: Backend) {
    let data = TestData::new(backend).await;
    let tweak = |c: &mut gatehouse::config::Config| {
        c.allow_private_webhook_targets = true;
    };
    let a = TestServer::start_with(data.clone(), tweak).await;
    let b = TestServer::start_with(data.clone(), tweak).await;
    let rx = Receiver::start();
    let sandbox = a.boot().sandbox_id.clone();
    let (_, secret) = create_webhook(&a, &sandbox, &rx.url("/both"), &["access_key.revoked"]).await;
    rx.set(&[&secret], 0).await;
    let mut keys = Vec::new();
    for i in 0..12 {
        let (key, _) = a
            .create_key(
                a.key(),
                json!({"name": format!("k{i}"), "environment_id": sandbox}),
            )
            .await;
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node
            .delete(&format!("/v1/access-keys/{key}"), a.key())
            .await;
        assert!(r.status.is_success(), "{}", r.text);
        keys.push(key);
    }
    rx.wait_until(WAIT, |got| got.len() >= keys.len()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rx.received().await;
    let mut ids: Vec<String> = got.iter().map(|r| r.webhook_id.clone().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), keys.len());
    assert_eq!(got.len(), keys.len(), "each event delivered once");
    for key in &keys {
        assert_eq!(
            got.iter()
                .filter(|r| r.json()["data"]["access_key_id"] == key.as_str())
                .count(),
            1
        );
    }
}

/// `gatehouse serve` in `dir` over `database_url`, delivering to private
/// addresses with a short retry schedule.
fn serve(dir: &std::path::Path, database_url: &str) -> Serve {
    Serve::new(dir, database_url)
        .env("GATEHOUSE_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true")
        .env("GATEHOUSE_WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,1,1")
}

async fn call(base: &str, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
    gatehouse::service::outbound::install_tls_provider();
    let client = reqwest::Client::new();
    for _ in 0..100 {
        let mut req = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(key);
        if let Some(b) = &body {
            req = req.json(b);
        }
        if let Ok(resp) = req.send().await {
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            return resp.json().await.unwrap_or(Value::Null);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} never answered {path}");
}

/// A change whose event has not been delivered when the server is killed
/// with SIGKILL is delivered after the restart: the outbox was written in
/// the change's transaction.
async fn delivered_after_sigkill(backend: Backend) {
    let data = TestData::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let db = data.database_url();
    let rx = Receiver::start();
    let spec = serve(dir.path(), &db);
    let mut node = spec.spawn();
    let key = node
        .key_banner
        .recv_timeout(Duration::from_secs(30))
        .expect("the first start prints the key");
    let envs = call(&node.base, Method::GET, "/v1/projects", &key, None).await;
    let sandbox = common::environment_id(&envs["data"][0], "sandbox");
    let hook = call(
        &node.base,
        Method::POST,
        "/v1/webhooks",
        &key,
        Some(json!({"environment_id": sandbox, "url": rx.url("/durable"), "events": ["access_key.revoked"]})),
    )
    .await;
    rx.set(&[hook["data"]["secret"].as_str().unwrap()], 0).await;

    // Revoke a key and kill the server at once; try again in the rare case
    // the delivery beat the kill.
    let mut pending = None;
    for _ in 0..5 {
        let made = call(
            &node.base,
            Method::POST,
            "/v1/access-keys",
            &key,
            Some(json!({"name": "doomed", "environment_id": sandbox})),
        )
        .await;
        let id = made["data"]["id"].as_str().unwrap().to_string();
        let before = rx.received().await.len();
        call(
            &node.base,
            Method::DELETE,
            &format!("/v1/access-keys/{id}"),
            &key,
            None,
        )
        .await;
        node.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rx.received().await.len();
        node = spec.spawn();
        if after == before {
            pending = Some(id);
            break;
        }
    }
    let id = pending.expect("the server was killed before a delivery at least once in 5 tries");
    let got = rx
        .wait_until(WAIT, |got| {
            got.iter()
                .any(|r| r.json()["data"]["access_key_id"] == id.as_str())
        })
        .await;
    let delivered = got
        .iter()
        .find(|r| r.json()["data"]["access_key_id"] == id.as_str())
        .unwrap();
    assert!(delivered.verified);
    assert_eq!(delivered.path, "/durable");
    node.kill();
}
