//! Access keys and personal access tokens, end to end over HTTP, on SQLite
//! and PostgreSQL: create, list, get, rotate, revoke, introspect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    bootstrap_credentials_introspect,
    access_key_lifecycle,
    list_is_paginated_and_filtered,
    rotation_grace_period,
    revocation_takes_effect_on_next_request,
    personal_access_tokens,
    expired_key_is_rejected,
    introspection_shows_this_use,
);

/// The bootstrap key and PAT both work and say what they are.
async fn bootstrap_credentials_introspect(backend: Backend) {
    let s = TestServer::start(backend).await;
    let me = s.get("/v1/tokens/me", s.key()).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let d = &me.body["data"];
    assert_eq!(d["kind"], "access_key");
    assert_eq!(d["id"], s.boot().key_id.as_str());
    assert!(
        d.get("token").is_none(),
        "introspection must not return the token"
    );
    assert_eq!(d["scopes"].as_array().unwrap().len(), 15);
    assert!(d["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("connections:reveal")));
    assert_eq!(d["created_by"]["email"], s.boot().owner_email.as_str());
    assert_eq!(d["project_id"], serde_json::Value::Null);

    let me = s.get("/v1/tokens/me", &s.boot().pat).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["data"]["kind"], "personal_access_token");
    assert!(me.body["data"]["id"].as_str().unwrap().starts_with("pat_"));
}

/// Create returns the token once; get and list never do; every step is audited.
async fn access_key_lifecycle(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let r = s
        .post(
            "/v1/access-keys",
            s.key(),
            json!({"name": "ci deploys", "environment_id": sandbox, "scopes": ["apps:read", "keys:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = &r.body["data"];
    let token = key["token"].as_str().unwrap();
    let id = key["id"].as_str().unwrap();
    assert!(id.starts_with("key_"));
    assert!(token.starts_with("dyn_") && token.len() == 4 + 56);
    assert_eq!(key["checksum"].as_str().unwrap(), &token[token.len() - 6..]);
    assert_eq!(
        key["preview"].as_str().unwrap(),
        format!("dyn_{}…{}", &token[4..7], &token[token.len() - 6..])
    );
    assert_eq!(key["project_id"], s.boot().project_id.as_str());
    assert_eq!(key["environment_id"], sandbox.as_str());
    assert_eq!(key["scopes"], json!(["keys:read", "apps:read"]));
    assert_eq!(key["created_by"]["via_key_id"], s.boot().key_id.as_str());
    assert_eq!(key["active"], true);

    let got = s.get(&format!("/v1/access-keys/{id}"), s.key()).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body["data"].get("token").is_none());
    assert!(!got.text.contains(token));

    // The new key works, within its scopes.
    let me = s.get("/v1/tokens/me", token).await;
    assert_eq!(me.body["data"]["id"], id);

    let revoked = s.delete(&format!("/v1/access-keys/{id}"), s.key()).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let got = s.get(&format!("/v1/access-keys/{id}"), s.key()).await;
    assert_eq!(got.body["data"]["active"], false);
    assert!(got.body["data"]["revoked_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    let events = s
        .get(&format!("/v1/audit-events?target_id={id}"), s.key())
        .await;
    let actions: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["access_key.revoked", "access_key.created"]);
    let event = &events.body["data"][0];
    assert_eq!(event["actor"]["kind"], "access_key");
    assert_eq!(event["actor"]["id"], s.boot().key_id.as_str());
    assert_eq!(event["target"]["type"], "access_key");
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["ip"], "127.0.0.1");
}

/// Lists page with `page`/`page_size` and filter by environment and state.
async fn list_is_paginated_and_filtered(backend: Backend) {
    let s = TestServer::start(backend).await;
    let live = s.boot().live_id.clone();
    for i in 0..3 {
        s.create_key(
            s.key(),
            json!({"name": format!("live {i}"), "environment_id": live}),
        )
        .await;
    }
    let (gone, _) = s.create_key(s.key(), json!({"name": "gone"})).await;
    s.delete(&format!("/v1/access-keys/{gone}"), s.key()).await;

    let all = s.get("/v1/access-keys?page_size=2", s.key()).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        all.body["pagination"],
        json!({"page": 1, "page_size": 2, "page_count": 3, "total_count": 5})
    );
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);
    let last = s.get("/v1/access-keys?page_size=2&page=3", s.key()).await;
    assert_eq!(last.body["data"].as_array().unwrap().len(), 1);
    // Newest first: the bootstrap key is the oldest.
    assert_eq!(last.body["data"][0]["id"], s.boot().key_id.as_str());

    let live_keys = s
        .get(&format!("/v1/access-keys?environment_id={live}"), s.key())
        .await;
    assert_eq!(live_keys.body["pagination"]["total_count"], 3);
    let inactive = s.get("/v1/access-keys?active=false", s.key()).await;
    assert_eq!(inactive.body["pagination"]["total_count"], 1);
    assert_eq!(inactive.body["data"][0]["id"], gone.as_str());
}

/// Rotation issues a new key with the same name, scopes and reach; the old
/// one works until the grace period ends (immediately with grace 0).
async fn rotation_grace_period(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, old) = s
        .create_key(
            s.key(),
            json!({"name": "rotating", "project_id": s.boot().project_id, "scopes": ["keys:read"]}),
        )
        .await;
    assert_eq!(s.get("/v1/tokens/me", &old).await.status, StatusCode::OK);

    let r = s
        .post(
            &format!("/v1/access-keys/{id}/rotate"),
            s.key(),
            json!({"grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let new = r.body["data"]["token"].as_str().unwrap().to_string();
    assert_ne!(r.body["data"]["id"], id.as_str());
    assert_eq!(r.body["data"]["name"], "rotating");
    assert_eq!(r.body["data"]["scopes"], json!(["keys:read"]));
    assert_eq!(r.body["data"]["project_id"], s.boot().project_id.as_str());

    // Old key: still working, expiring in about an hour, not revoked.
    assert_eq!(s.get("/v1/tokens/me", &old).await.status, StatusCode::OK);
    let old_view = s.get(&format!("/v1/access-keys/{id}"), s.key()).await;
    assert_eq!(old_view.body["data"]["revoked_at"], serde_json::Value::Null);
    let expires =
        gatehouse_core::time::parse_rfc3339(old_view.body["data"]["expires_at"].as_str().unwrap())
            .unwrap();
    let in_an_hour = gatehouse_core::time::now_ms() + 3_600_000;
    assert!(
        (expires - in_an_hour).abs() < 60_000,
        "expires_at should be now + grace"
    );
    assert_eq!(s.get("/v1/tokens/me", &new).await.status, StatusCode::OK);

    // Rotating the new key with no body (grace 0) stops it at once.
    let new_id = r.body["data"]["id"].as_str().unwrap();
    let r2 = s
        .call(
            reqwest::Method::POST,
            &format!("/v1/access-keys/{new_id}/rotate"),
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(r2.status, StatusCode::CREATED, "{}", r2.text);
    let stopped = s.get("/v1/tokens/me", &new).await;
    assert_eq!(stopped.status, StatusCode::UNAUTHORIZED);

    // Out-of-range grace is a 400 naming the field.
    let bad = s
        .post(
            &format!("/v1/access-keys/{id}/rotate"),
            s.key(),
            json!({"grace_period_seconds": 604801}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.detail("grace_period_seconds").is_some());
}

/// A revoked key fails on the very next request, even though it was just
/// served from the cache.
async fn revocation_takes_effect_on_next_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (id, token) = s.create_key(s.key(), json!({"name": "short-lived"})).await;
    for _ in 0..3 {
        assert_eq!(s.get("/v1/tokens/me", &token).await.status, StatusCode::OK);
    }
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = s.get("/v1/tokens/me", &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_code(), "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    // Revoking again is idempotent.
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

/// PATs are created by a PAT (never by an access key), listed per owner,
/// and revoked like keys.
async fn personal_access_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let pat = s.boot().pat.clone();
    let by_key = s
        .post(
            "/v1/personal-access-tokens",
            s.key(),
            json!({"name": "nope"}),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::FORBIDDEN);
    assert_eq!(by_key.error_code(), "forbidden");

    let r = s
        .post(
            "/v1/personal-access-tokens",
            &pat,
            json!({"name": "laptop", "scopes": ["projects:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let new = r.body["data"]["token"].as_str().unwrap().to_string();
    let new_id = r.body["data"]["id"].as_str().unwrap().to_string();
    assert!(new.starts_with("dyn_pat_") && new.len() == 8 + 56);
    assert!(new_id.starts_with("pat_"));
    assert!(r.body["data"]["created_by"].get("via_key_id").is_none());

    let list = s.get("/v1/personal-access-tokens", &pat).await;
    assert_eq!(list.body["pagination"]["total_count"], 2);
    // A PAT with only projects:read cannot list tokens or exceed itself.
    assert_eq!(
        s.get("/v1/personal-access-tokens", &new).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.get("/v1/projects", &new).await.status, StatusCode::OK);

    assert_eq!(
        s.delete(&format!("/v1/personal-access-tokens/{new_id}"), &pat)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/v1/projects", &new).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A key past its `expires_at` is refused; an expiry in the past is a 400.
async fn expired_key_is_rejected(backend: Backend) {
    let s = TestServer::start(backend).await;
    let past = s
        .post(
            "/v1/access-keys",
            s.key(),
            json!({"name": "x", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert_eq!(past.detail("expires_at"), Some("must be in the future"));

    let soon = gatehouse_core::time::format_ms(gatehouse_core::time::now_ms() + 2_000);
    let (_, token) = s
        .create_key(s.key(), json!({"name": "brief", "expires_at": soon}))
        .await;
    assert_eq!(s.get("/v1/tokens/me", &token).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let r = s.get("/v1/tokens/me", &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// `GET /v1/tokens/me` shows the request itself as the key's last use,
/// the same body however it is made (whole at a cached key's first
/// request, from its template after that, reused within a second), and a
/// later second once one has passed.
async fn introspection_shows_this_use(backend: Backend) {
    use gatehouse_core::time::{now_ms, parse_rfc3339};
    let s = TestServer::start(backend).await;
    let (_, key) = s.create_key(s.key(), json!({"name": "seen"})).await;
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let before = now_ms().div_euclid(1000) * 1000;
        let me = s.get("/v1/tokens/me", &key).await;
        let after = now_ms();
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        let used = parse_rfc3339(me.body["data"]["last_used_at"].as_str().unwrap()).unwrap();
        assert!(
            (before..=after).contains(&used),
            "{before} <= {used} <= {after}"
        );
        bodies.push((used, me.body));
    }
    let (first, body) = &bodies[0];
    for (used, other) in &bodies[1..] {
        let mut other = other.clone();
        other["data"]["last_used_at"] = body["data"]["last_used_at"].clone();
        assert_eq!(&other, body, "the same body but for last_used_at");
        assert!(used >= first);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let later = s.get("/v1/tokens/me", &key).await;
    let used = parse_rfc3339(later.body["data"]["last_used_at"].as_str().unwrap()).unwrap();
    assert!(used >= bodies[3].0 + 1_000, "a second later: {used}");
}
