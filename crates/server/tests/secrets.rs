//! Secrets stay secret: no token or password in the database (SQLite file
//! or PostgreSQL rows) or in logs at the most verbose level, no OAuth2
//! token, code, state or client secret anywhere but the reveal route, and
//! `last_used_at` is written in batches, not per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use std::sync::{Arc, Mutex, OnceLock};

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    no_plaintext_in_database,
    no_secrets_in_logs,
    last_used_at_is_batched,
    a_full_batch_is_written_early,
    oauth2_secrets_stay_secret,
);

/// Makes credentials and members, uses them, and returns every secret seen.
async fn exercise(s: &TestServer) -> Vec<String> {
    let b = s.boot().clone();
    let mut secrets = vec![b.key.clone(), b.pat.clone(), b.password.clone()];
    let (id, key) = s
        .create_key(
            s.key(),
            json!({"name": "k1", "environment_id": b.sandbox_id}),
        )
        .await;
    secrets.push(key.clone());
    let rotated = s
        .post(
            &format!("/v1/access-keys/{id}/rotate"),
            s.key(),
            json!({"grace_period_seconds": 60}),
        )
        .await;
    secrets.push(rotated.body["data"]["token"].as_str().unwrap().to_string());
    let pat = s
        .post("/v1/personal-access-tokens", &b.pat, json!({"name": "p"}))
        .await;
    secrets.push(pat.body["data"]["token"].as_str().unwrap().to_string());
    let chosen = "correct horse battery staple".to_string();
    let m = s
        .post(
            "/v1/organization/members",
            &b.pat,
            json!({"email": "m@example.com", "password": chosen}),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert!(
        m.body["data"].get("password").is_none(),
        "a chosen password is never echoed"
    );
    secrets.push(chosen);
    let generated = s
        .post(
            "/v1/organization/members",
            &b.pat,
            json!({"email": "g@example.com"}),
        )
        .await;
    secrets.push(
        generated.body["data"]["password"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    for token in &secrets[..2] {
        assert_eq!(s.get("/v1/tokens/me", token).await.status, StatusCode::OK);
    }
    assert_eq!(s.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    // A bad token in a request must not be logged either.
    let last = if b.key.ends_with('x') { 'y' } else { 'x' };
    let bad = format!("{}{last}", &b.key[..b.key.len() - 1]);
    assert_eq!(
        s.get("/v1/tokens/me", &bad).await.status,
        StatusCode::UNAUTHORIZED
    );
    secrets.push(bad);

    // An end user's credentials and their connect token (through the
    // app hostname, the connect routes, and the reveal route).
    let app = s
        .post(
            "/v1/apps",
            s.key(),
            json!({"name": "Logs", "environment_id": b.sandbox_id}),
        )
        .await;
    let (app_id, host) = (
        app.body["data"]["id"].as_str().unwrap().to_string(),
        app.body["data"]["hostname"].as_str().unwrap().to_string(),
    );
    let reqs = json!([{"name": "ai", "type": "connection",
        "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}}]);
    let ver = s
        .post(
            &format!("/v1/apps/{app_id}/versions"),
            s.key(),
            json!({"requirements": reqs}),
        )
        .await;
    let ver_id = ver.body["data"]["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/v1/apps/{app_id}/deployments"),
        s.key(),
        json!({"version_id": ver_id}),
    )
    .await;
    let minted = s
        .call_host(
            &host,
            reqwest::Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": "u"})),
        )
        .await;
    let connect_token = minted.body["token"].as_str().unwrap().to_string();
    let reqs = s.get("/v1/connect/requirements", &connect_token).await;
    let req_id = reqs.body["data"][0]["id"].as_str().unwrap().to_string();
    let api_key = "sk-live-do-not-log-4f3e2d1c".to_string();
    let r = s
        .post(
            &format!("/v1/connect/requirements/{req_id}/credentials"),
            &connect_token,
            json!({"type": "dynamiq.connections.OpenAI", "config": {"api_key": api_key}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bad_config = s
        .post(&format!("/v1/connect/requirements/{req_id}/credentials"), &connect_token,
              json!({"type": "dynamiq.connections.OpenAI", "config": {"api_key": api_key, "extra": "also-secret-7a6b"}}))
        .await;
    assert_eq!(bad_config.status, StatusCode::BAD_REQUEST);
    assert!(
        !bad_config.text.contains(&api_key),
        "error details never echo values"
    );
    let revealed = s
        .get(
            &format!("/v1/apps/{app_id}/end-users/u/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(
        revealed.body["data"][0]["config"]["api_key"],
        api_key.as_str()
    );
    secrets.extend([connect_token, api_key, "also-secret-7a6b".to_string()]);

    s.state.usage().flush(s.state.store()).await;
    secrets
}

/// Neither tokens nor passwords appear anywhere in the stored data.
async fn no_plaintext_in_database(backend: Backend) {
    let s = TestServer::start(backend).await;
    let secrets = exercise(&s).await;
    let data = s.data.clone();
    s.stop().await;

    let text = common::dump_database(&data).await;
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret was found in the {backend:?} database"
        );
    }
}

/// Log lines captured from every thread of the process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// At TRACE level, with every library's logs on, no secret is written.
async fn no_secrets_in_logs(backend: Backend) {
    let buf = captured();
    let s = TestServer::start(backend).await;
    let secrets = exercise(&s).await;
    s.stop().await;
    let logs = String::from_utf8_lossy(&buf.lock().unwrap()).to_string();
    assert!(logs.contains("gatehouse listening"), "logs were captured");
    assert!(logs.contains("request_id"), "request spans were captured");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret was logged on {backend:?}"
        );
    }
}

/// The stored access key `id`, as the database holds it now.
async fn stored_key(s: &TestServer, id: &str) -> gatehouse_store::credentials::CredentialRecord {
    s.state
        .store()
        .credential(gatehouse_core::TokenKind::AccessKey, id)
        .await
        .unwrap()
        .unwrap()
}

/// Using a key writes nothing until the batch flush, which then records it.
async fn last_used_at_is_batched(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, key) = s.create_key(s.key(), json!({"name": "used"})).await;
    for _ in 0..5 {
        assert_eq!(s.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    }
    let stored = stored_key(&s, &id).await;
    assert_eq!(stored.credential.last_used_at, None, "no write per request");
    // The API already shows this node's pending use.
    let shown = s.get(&format!("/v1/access-keys/{id}"), s.key()).await;
    assert!(shown.body["data"]["last_used_at"].is_string());

    s.state.usage().flush(s.state.store()).await;
    let stored = stored_key(&s, &id).await;
    let used = stored.credential.last_used_at.expect("flushed");
    assert!((gatehouse_core::time::now_ms() - used).abs() < 60_000);
}

/// Once `MAX_PENDING` credentials' uses wait, they are written at once,
/// long before the 30 s flush interval: what waits in memory stays small
/// however many keys are in use.
async fn a_full_batch_is_written_early(backend: Backend) {
    use gatehouse::service::usage::MAX_PENDING;
    let s = TestServer::start(backend).await;
    let (id, key) = s.create_key(s.key(), json!({"name": "used"})).await;
    assert_eq!(s.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    let usage = s.state.usage();
    let now = gatehouse_core::time::now_ms();
    // Uses of credentials this node has not seen (other ids) fill the batch.
    for i in usage.pending_count()..MAX_PENDING {
        usage.record(&format!("key_{i:026}"), now);
    }
    let mut stored = None;
    for _ in 0..100 {
        let c = stored_key(&s, &id).await;
        if c.credential.last_used_at.is_some() {
            stored = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stored.is_some(), "a full batch was not written within 10 s");
    assert!(usage.pending_count() < MAX_PENDING);
}

/// An OAuth2 account (file provider, client_secret_basic) and connection
/// (API provider, client_secret_post), each refreshed: no client secret,
/// code, state, access or refresh token the provider issued is in the
/// database, the logs, `/metrics`, the audit trail or any response but the
/// reveal route's (which shows access tokens only).
async fn oauth2_secrets_stay_secret(backend: Backend) {
    use oidc::{
        connect_token, deployed_app, open_callback, query_of, world, Lifetimes, BASIC, GOOGLE, POST,
    };
    let buf = captured();
    let lifetimes = Lifetimes {
        access_seconds: 45,
        refresh_seconds: 86_400,
        refreshed_access_seconds: None,
    };
    let w = world(backend, lifetimes, Some(BASIC)).await;
    let s = &w.s;
    let env = s.boot().sandbox_id.clone();
    let p = s
        .post(
            "/v1/oauth2-providers",
            s.key(),
            json!({"name": "Google", "environment_id": env, "connection_type": GOOGLE,
                   "discovery_url": format!("{}/.well-known/openid-configuration", w.idp.issuer),
                   "client_id": POST.id, "client_secret": POST.secret,
                   "client_auth": "client_secret_post", "scopes": ["openid", "email"]}),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.text);
    let reqs = json!([
        {"name": "mail", "type": "action_connector_account",
         "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}},
        {"name": "google", "type": "connection",
         "spec": {"type": "connection", "data": {"type": GOOGLE}}},
    ]);
    let (app, host) = deployed_app(s, reqs).await;
    let ct = connect_token(s, &host, "ada").await;
    let mut seen = vec![BASIC.secret.to_string(), POST.secret.to_string()];
    let listed = s.get("/v1/connect/requirements", &ct).await;
    for (i, route) in ["action-connector", "oauth2"].into_iter().enumerate() {
        let req = listed.body["data"][i]["id"].as_str().unwrap();
        let r = s
            .call(
                reqwest::Method::POST,
                &format!("/v1/connect/requirements/{req}/{route}/authorize"),
                Some(&ct),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let url = r.body["data"]["url"].as_str().unwrap().to_string();
        seen.push(query_of(&url)["state"].clone());
        let back = w.idp.sign_in(&url, "ada@example.com", false).await;
        seen.push(query_of(&back)["code"].clone());
        assert_eq!(open_callback(s, &back).await.status, StatusCode::OK);
    }
    // Revealing refreshes the 45-second tokens (rotating refresh tokens).
    let revealed = s
        .get(
            &format!("/v1/apps/{app}/end-users/ada/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(
        revealed.body["data"].as_array().unwrap().len(),
        2,
        "{}",
        revealed.text
    );
    assert_eq!(
        w.idp.token_calls().await,
        (4, 0),
        "two exchanges, two refreshes"
    );
    seen.extend(w.idp.issued_secrets().await);
    assert!(seen.len() >= 2 + 4 + 4, "{seen:?}");

    let mut responses = String::new();
    for path in [
        "/v1/audit-events?page_size=200".to_string(),
        format!("/v1/end-users/ada?environment_id={env}"),
        "/v1/oauth2-providers".to_string(),
        "/metrics".to_string(),
    ] {
        responses.push_str(&s.get(&path, s.key()).await.text);
    }
    responses.push_str(&s.get("/v1/connect/requirements", &ct).await.text);
    let revealed_tokens: Vec<String> = revealed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["config"]["access_token"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !revealed.text.contains("refresh_token"),
        "the reveal route never shows a refresh token"
    );
    let data = s.data.clone();
    w.s.stop().await;
    let stored = common::dump_database(&data).await;
    let logs = String::from_utf8_lossy(&buf.lock().unwrap()).to_string();
    for secret in seen.iter().filter(|v| v.len() >= 8) {
        assert!(
            !stored.contains(secret.as_str()),
            "a secret is stored in plaintext on {backend:?}"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "a secret was logged on {backend:?}"
        );
        if !revealed_tokens.contains(secret) {
            assert!(
                !revealed.text.contains(secret.as_str()),
                "reveal shows only access tokens"
            );
        }
        assert!(
            !responses.contains(secret.as_str()),
            "a secret is in a response on {backend:?}"
        );
    }
}
