//! The audit trail (SPEC §9) on SQLite and PostgreSQL: an event for every
//! kind of change, in the SPEC's shape and without secrets; filters;
//! cursor paging that sees each event exactly once while events are being
//! written; and retention pruning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/login.rs"]
mod login;

use std::{collections::HashSet, time::Duration};

use common::{Backend, TestData, TestServer};
use gatehouse::service::audit::{self, Actor, Origin};
use gatehouse_core::{time::now_ms, Reach};
use gatehouse_store::effects::Effects;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    every_change_is_audited,
    filters_and_bad_queries,
    cursor_paging_sees_each_event_once_while_writing,
    old_events_are_pruned,
);

const OPENAI: &str = "dynamiq.connections.OpenAI";

/// Every audit event the bootstrap key can see, newest first.
async fn all_events(s: &TestServer) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit-events?page_size=200&cursor={c}"),
            None => "/v1/audit-events?page_size=200".to_string(),
        };
        let r = s.get(&path, s.key()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        out.extend(r.body["data"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn ok(r: &common::Reply) {
    assert!(r.status.is_success(), "{}", r.text);
}

/// Makes one change of every kind SPEC §9 lists through the API and the
/// sign-in form, then finds an event for each, in the SPEC's shape, with
/// no secret anywhere in the trail.
async fn every_change_is_audited(backend: Backend) {
    let s = TestServer::start(backend).await;
    let sandbox = s.boot().sandbox_id.clone();
    let pat = s.boot().pat.clone();

    // Keys and personal access tokens.
    let (key_id, key_token) = s
        .create_key(s.key(), json!({"name": "audited", "scopes": ["apps:read"]}))
        .await;
    ok(&s
        .post(
            &format!("/v1/access-keys/{key_id}/rotate"),
            s.key(),
            json!({}),
        )
        .await);
    ok(&s
        .delete(&format!("/v1/access-keys/{key_id}"), s.key())
        .await);
    let made = s
        .post(
            "/v1/personal-access-tokens",
            &pat,
            json!({"name": "mine", "scopes": ["apps:read"]}),
        )
        .await;
    ok(&made);
    let pat_id = made.body["data"]["id"].as_str().unwrap().to_string();
    let pat_token = made.body["data"]["token"].as_str().unwrap().to_string();
    ok(&s
        .delete(&format!("/v1/personal-access-tokens/{pat_id}"), &pat)
        .await);

    // Projects, environments, members.
    let project = s
        .post("/v1/projects", s.key(), json!({"name": "Audit"}))
        .await;
    ok(&project);
    let project_id = project.body["data"]["id"].as_str().unwrap().to_string();
    ok(&s
        .patch(
            &format!("/v1/projects/{project_id}"),
            s.key(),
            json!({"name": "Audited"}),
        )
        .await);
    ok(&s
        .post(
            &format!("/v1/projects/{project_id}/environments"),
            s.key(),
            json!({"name": "staging"}),
        )
        .await);
    ok(&s
        .delete(&format!("/v1/projects/{project_id}"), s.key())
        .await);
    let member = s
        .post(
            "/v1/organization/members",
            &pat,
            json!({"email": "ada@example.com", "role": "viewer"}),
        )
        .await;
    ok(&member);
    let member_id = member.body["data"]["id"].as_str().unwrap().to_string();
    ok(&s
        .patch(
            &format!("/v1/organization/members/{member_id}"),
            &pat,
            json!({"role": "developer"}),
        )
        .await);
    ok(&s
        .delete(&format!("/v1/organization/members/{member_id}"), &pat)
        .await);

    // Apps, versions, deployments; connections, reveal, erasure.
    let reqs = json!([{"name": "openai", "type": "connection",
                       "spec": {"type": "connection", "data": {"type": OPENAI}}}]);
    let (app_id, host) = s.deploy_app(&sandbox, "Audit agent", "private", reqs).await;
    ok(&s
        .patch(
            &format!("/v1/apps/{app_id}"),
            s.key(),
            json!({"name": "Audit agent 2"}),
        )
        .await);
    let minted = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": "u-1"})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    let listed = s.get("/v1/connect/requirements", &token).await;
    let req_id = listed.body["data"][0]["id"].as_str().unwrap().to_string();
    let secret_value = "sk-audit-secret-998877";
    ok(&s
        .post(
            &format!("/v1/connect/requirements/{req_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": secret_value}}),
        )
        .await);
    ok(&s
        .get(
            &format!("/v1/apps/{app_id}/end-users/u-1/credentials"),
            s.key(),
        )
        .await);
    let user = s
        .get(
            &format!("/v1/end-users/u-1?environment_id={sandbox}"),
            s.key(),
        )
        .await;
    let conn_id = user.body["data"]["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&s
        .delete(
            &format!("/v1/end-users/u-1/connections/{conn_id}?environment_id={sandbox}"),
            s.key(),
        )
        .await);
    ok(&s
        .post(
            &format!("/v1/end-users/u-1/connect-tokens/revoke?environment_id={sandbox}"),
            s.key(),
            json!({}),
        )
        .await);
    ok(&s
        .delete(
            &format!("/v1/end-users/u-1?environment_id={sandbox}"),
            s.key(),
        )
        .await);
    ok(&s.delete(&format!("/v1/apps/{app_id}"), s.key()).await);

    // OAuth2 providers and webhooks.
    let provider = s
        .post(
            "/v1/oauth2-providers",
            s.key(),
            json!({"name": "google", "environment_id": sandbox, "preset": "google",
                   "connection_type": "dynamiq.connections.GoogleOAuth2",
                   "client_id": "audit-client", "client_secret": "audit-client-secret-55"}),
        )
        .await;
    ok(&provider);
    let provider_id = provider.body["data"]["id"].as_str().unwrap().to_string();
    ok(&s
        .patch(
            &format!("/v1/oauth2-providers/{provider_id}"),
            s.key(),
            json!({"client_id": "audit-2"}),
        )
        .await);
    ok(&s
        .delete(&format!("/v1/oauth2-providers/{provider_id}"), s.key())
        .await);
    let hook = s
        .post(
            "/v1/webhooks",
            s.key(),
            json!({"environment_id": sandbox, "url": "https://hooks.example.com/audit", "events": ["connection.created"]}),
        )
        .await;
    ok(&hook);
    let hook_id = hook.body["data"]["id"].as_str().unwrap().to_string();
    let hook_secret = hook.body["data"]["secret"].as_str().unwrap().to_string();
    ok(&s
        .patch(
            &format!("/v1/webhooks/{hook_id}"),
            s.key(),
            json!({"enabled": false}),
        )
        .await);
    ok(&s
        .post(
            &format!("/v1/webhooks/{hook_id}/rotate-secret"),
            s.key(),
            json!({}),
        )
        .await);
    ok(&s.delete(&format!("/v1/webhooks/{hook_id}"), s.key()).await);

    // Sign-in success and failure (twice: a known and an unknown email).
    let boot = s.boot();
    let good = login::attempt(&s.base, &boot.owner_email, &boot.password).await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    let bad = login::attempt(&s.base, &boot.owner_email, "wrong-password-1").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let unknown = login::attempt(&s.base, "nobody@example.com", "wrong-password-2").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let events = all_events(&s).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "access_key.created",
        "access_key.rotated",
        "access_key.revoked",
        "personal_access_token.created",
        "personal_access_token.revoked",
        "project.created",
        "project.updated",
        "project.deleted",
        "environment.created",
        "member.created",
        "member.updated",
        "member.removed",
        "app.created",
        "app.updated",
        "app_version.created",
        "app.deployed",
        "app.deleted",
        "connect_token.created",
        "connection.created",
        "credentials.revealed",
        "connection.deleted",
        "connect_token.revoked",
        "end_user.erased",
        "oauth2_provider.created",
        "oauth2_provider.updated",
        "oauth2_provider.deleted",
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.deleted",
        "user.signed_in",
        "user.sign_in_failed",
    ] {
        assert!(actions.contains(&expected), "no {expected} in {actions:?}");
    }
    // Newest first; the SPEC shape; the request's IP.
    let ats: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = ats.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ats, sorted, "newest first");
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert!(
            e["actor"]["kind"].is_string() && e["actor"]["id"].is_string(),
            "{e}"
        );
        assert!(
            e["target"]["type"].is_string() && e["target"]["id"].is_string(),
            "{e}"
        );
        assert!(e["action"].as_str().unwrap().contains('.'));
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
        assert!(e.get("user_agent").is_some() && e.get("ip").is_some());
        if e["actor"]["kind"] != "system" {
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
        }
    }
    let created = events
        .iter()
        .find(|e| e["action"] == "access_key.created" && e["target"]["id"] == key_id.as_str())
        .unwrap();
    assert_eq!(created["actor"]["kind"], "access_key");
    assert_eq!(created["actor"]["id"], s.boot().key_id.as_str());
    assert_eq!(created["target"]["type"], "access_key");
    // Failed sign-ins say nothing of the email or password.
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "user.sign_in_failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]["target"], failed[1]["target"],
        "a known and an unknown email look alike"
    );
    assert_eq!(failed[0]["actor"], failed[1]["actor"]);
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        secret_value,
        key_token.as_str(),
        pat_token.as_str(),
        token.as_str(),
        hook_secret.as_str(),
        "audit-client-secret-55",
        boot.password.as_str(),
        "wrong-password-1",
        "nobody@example.com",
    ] {
        assert!(!text.contains(secret), "the audit trail holds {secret}");
    }
}

/// `action`, `actor_id`, `target_id`, `since` and `until` narrow the list;
/// bad values are 400 on their parameter.
async fn filters_and_bad_queries(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (a, _) = s.create_key(s.key(), json!({"name": "a"})).await;
    // Times are shown to the second: b is made in a later second than a.
    let next_second = 1000 - now_ms() % 1000 + 10;
    tokio::time::sleep(Duration::from_millis(next_second as u64)).await;
    let before_b = gatehouse_core::time::format_ms(now_ms());
    let (b, _) = s.create_key(s.key(), json!({"name": "b"})).await;

    let by_action = s
        .get("/v1/audit-events?action=access_key.created", s.key())
        .await;
    assert_eq!(
        by_action.body["data"].as_array().unwrap().len(),
        3,
        "bootstrap key, a, b"
    );
    let by_target = s
        .get(&format!("/v1/audit-events?target_id={a}"), s.key())
        .await;
    let rows = by_target.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["target"]["id"], a.as_str());
    let by_actor = s
        .get(
            &format!(
                "/v1/audit-events?actor_id={}&action=access_key.created",
                s.boot().key_id
            ),
            s.key(),
        )
        .await;
    assert_eq!(by_actor.body["data"].as_array().unwrap().len(), 2);
    let since = s
        .get(
            &format!("/v1/audit-events?action=access_key.created&since={before_b}"),
            s.key(),
        )
        .await;
    let rows = since.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", since.text);
    assert_eq!(rows[0]["target"]["id"], b.as_str());
    let until = s
        .get(
            &format!("/v1/audit-events?action=access_key.created&until={before_b}"),
            s.key(),
        )
        .await;
    let rows = until.body["data"].as_array().unwrap();
    assert!(rows.iter().all(|e| e["target"]["id"] != b.as_str()));
    assert_eq!(rows.len(), 2);

    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("cursor=not-a-cursor", "cursor"),
        ("page_size=0", "page_size"),
    ] {
        let r = s.get(&format!("/v1/audit-events?{query}"), s.key()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(r.detail(field).is_some(), "{query}: {}", r.text);
    }
    let (_, no_audit) = s
        .create_key(s.key(), json!({"name": "c", "scopes": ["apps:read"]}))
        .await;
    assert_eq!(
        s.get("/v1/audit-events", &no_audit).await.status,
        StatusCode::FORBIDDEN
    );
}

/// Following `next_cursor` page by page while other events are written
/// meets every event that existed when paging began exactly once.
async fn cursor_paging_sees_each_event_once_while_writing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let org = s.boot().organization_id.clone();
    let store = s.state.store().clone();
    let write = |n: usize, tag: &'static str| {
        let store = store.clone();
        let org = org.clone();
        async move {
            for i in 0..n {
                let e = audit::event(
                    Actor {
                        kind: "system",
                        id: tag,
                    },
                    "test.written",
                    ("test", &format!("{tag}-{i}")),
                    &Reach::organization(&org),
                    &Origin::default(),
                    now_ms(),
                );
                store.record(&Effects::audit([e])).await.unwrap();
            }
        }
    };
    write(120, "before").await;
    let writer = tokio::spawn(write(120, "during"));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit-events?action=test.written&page_size=7&cursor={c}"),
            None => "/v1/audit-events?action=test.written&page_size=7".to_string(),
        };
        let r = s.get(&path, s.key()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.body.get("next_cursor").is_some(),
            "next_cursor is always there"
        );
        for e in r.body["data"].as_array().unwrap() {
            seen.push((
                e["id"].as_str().unwrap().to_string(),
                e["target"]["id"].as_str().unwrap().to_string(),
            ));
        }
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.await.unwrap();
    assert!(pages > 10);
    let ids: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), seen.len(), "no event twice");
    for i in 0..120 {
        let target = format!("before-{i}");
        assert_eq!(
            seen.iter().filter(|(_, t)| *t == target).count(),
            1,
            "{target} exactly once"
        );
    }
}

/// Events older than `audit_retention_days` are pruned in the background
/// (the first pass runs at start-up); newer ones stay.
async fn old_events_are_pruned(backend: Backend) {
    let data = TestData::new(backend).await;
    let first = TestServer::start_with(data.clone(), |_| {}).await;
    let org = first.boot().organization_id.clone();
    let key = first.key().to_string();
    let old = audit::event(
        Actor {
            kind: "system",
            id: "test",
        },
        "test.old",
        ("test", "old"),
        &Reach::organization(&org),
        &Origin::default(),
        now_ms() - 3 * 86_400_000,
    );
    let recent = audit::event(
        Actor {
            kind: "system",
            id: "test",
        },
        "test.recent",
        ("test", "recent"),
        &Reach::organization(&org),
        &Origin::default(),
        now_ms() - 86_400_000 / 2,
    );
    first
        .state
        .store()
        .record(&Effects::audit([old, recent]))
        .await
        .unwrap();
    first.stop().await;

    let s = TestServer::start_with(data, |c| c.audit_retention_days = 2).await;
    let mut gone = false;
    for _ in 0..100 {
        let r = s.get("/v1/audit-events?action=test.old", &key).await;
        if r.body["data"].as_array().unwrap().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the 3-day-old event is pruned");
    let r = s.get("/v1/audit-events?action=test.recent", &key).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
}
