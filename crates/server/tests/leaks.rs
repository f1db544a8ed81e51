//! Leaked-token revocation (SPEC §11) on SQLite and PostgreSQL: no
//! credential needed, every active key or PAT in a report dies at once,
//! the answer is the same whatever was in it, each revocation is audited
//! and announced, and reports are limited per client IP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Reply, TestData, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(leaked_tokens_are_revoked, bad_reports_and_limits);

async fn report(s: &TestServer, body: Value) -> Reply {
    s.call(Method::POST, "/v1/credentials/revoke", None, Some(body))
        .await
}

/// Whatever the report holds, the answer is 202 `{received: N}`; the
/// active key and PAT in it are revoked; the rest is ignored.
async fn leaked_tokens_are_revoked(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let (key_id, key) = s
        .create_key(s.key(), json!({"name": "leaky", "environment_id": sandbox}))
        .await;
    let pat = s
        .post(
            "/v1/personal-access-tokens",
            &s.boot().pat,
            json!({"name": "leaky pat"}),
        )
        .await;
    let pat_token = pat.body["data"]["token"].as_str().unwrap().to_string();
    let (gone_id, gone) = s
        .create_key(s.key(), json!({"name": "already revoked"}))
        .await;
    s.delete(&format!("/v1/access-keys/{gone_id}"), s.key())
        .await;
    let unknown =
        gatehouse_core::token::generate(s.state.prefixes(), gatehouse_core::TokenKind::AccessKey);
    use secrecy::ExposeSecret;
    let unknown = unknown.token.expose_secret().to_string();
    // A connect token minted by the key dies with it.
    let (_, host) = s
        .deploy_app(&sandbox, "Leaky app", "private", json!([]))
        .await;
    let minted = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            Some(&key),
            Some(json!({"user_id": "u"})),
        )
        .await;
    let connect_token = minted.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.get("/v1/connect/session", &connect_token).await.status,
        StatusCode::OK
    );

    let tokens = vec![
        key.clone(),
        pat_token.clone(),
        gone.clone(),
        unknown.clone(),
        "not a token at all".to_string(),
        key.clone(),
    ];
    let r = report(&s, json!({"tokens": tokens})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body, json!({"data": {"received": 6}}));
    // The same answer for a report of nothing real.
    let nothing = report(
        &s,
        json!({"tokens": [unknown.clone(), "x", "y", "z", "w", "v"]}),
    )
    .await;
    assert_eq!(nothing.status, StatusCode::ACCEPTED);
    assert_eq!(nothing.body, r.body);

    for t in [&key, &pat_token] {
        assert_eq!(
            s.get("/v1/tokens/me", t).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.get("/v1/connect/session", &connect_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/v1/tokens/me", s.key()).await.status, StatusCode::OK);

    let events = s
        .get("/v1/audit-events?actor_id=anonymous&page_size=50", s.key())
        .await;
    let rows: Vec<&Value> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["kind"] == "leak_report")
        .collect();
    let actions: Vec<&str> = rows.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(rows.len(), 2, "{actions:?}");
    assert!(actions.contains(&"access_key.revoked"));
    assert!(actions.contains(&"personal_access_token.revoked"));
    assert!(!events.text.contains(&key) && !events.text.contains(&pat_token));

    // access_key.revoked with reason "leaked" waits in the outbox for the
    // sandbox's webhooks.
    let bodies: Vec<String> = gatehouse_store::on_pool!(s.state.store(), |p| {
        sqlx::query_scalar("SELECT body FROM webhook_events WHERE type = 'access_key.revoked'")
            .fetch_all(p)
            .await
            .unwrap()
    });
    let leaked: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|b| b["data"]["access_key_id"] == key_id.as_str())
        .collect();
    assert_eq!(leaked.len(), 1, "{bodies:?}");
    assert_eq!(leaked[0]["data"]["reason"], "leaked");
    assert_eq!(leaked[0]["environment_id"], sandbox.as_str());
}

/// A report that is not 1–100 strings is 400; reports count against the
/// client IP's limit.
async fn bad_reports_and_limits(backend: Backend) {
    let s = TestServer::start_with(TestData::new(backend).await, |c| {
        c.rate_limits.ip = gatehouse::config::Rule {
            limit: 8,
            window_seconds: 3600,
        };
    })
    .await;
    let too_many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    for body in [
        json!({}),
        json!({"tokens": []}),
        json!({"tokens": too_many}),
        json!({"tokens": [1, 2]}),
        json!({"tokens": ["a".repeat(300)]}),
        json!({"tokens": "dyn_x"}),
    ] {
        let r = report(&s, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        let details = r.body["error"]["details"].as_object().unwrap();
        assert!(
            details
                .keys()
                .any(|k| k.starts_with("tokens") || k == "input"),
            "{}",
            r.text
        );
    }
    // The limit of 256 is in characters, as documented, not bytes.
    let r = report(&s, json!({"tokens": ["é".repeat(256)]})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let mut last = StatusCode::OK;
    for _ in 0..2 {
        last = report(&s, json!({"tokens": ["x"]})).await.status;
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "the ninth report from one IP"
    );
}
