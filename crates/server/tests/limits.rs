//! Rate limits (SPEC §8) over HTTP: every policy answers 429 with the
//! envelope, `Retry-After` and the `RateLimit` headers once used up, while
//! other keys go on; the headers ride on every answer of a limited route
//! and on no ops route or page; `Retry-After` is never early; an
//! environment's own limit set with `PATCH /v1/environments/{id}`; memory
//! stays bounded under a million client IPs; and with Redis two nodes
//! share one limit, fall back to their own when Redis stops and share
//! again when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Backend, Reply, TestData, TestServer};
use gatehouse::{
    config::limits::Rule,
    service::limits::{SharedState, CAPACITY},
    Config,
};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    credential_limit_answers_429,
    environment_limit_of_a_scoped_key,
    environment_override,
    environment_override_rules,
    connect_token_user_limit,
    ip_limit_without_a_valid_credential,
    public_app_and_callback_are_limited_by_ip,
    sign_in_limit,
    retry_after_is_never_early,
);

fn rule(limit: u32, window_seconds: u32) -> Rule {
    Rule {
        limit,
        window_seconds,
    }
}

async fn start(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(TestData::new(backend).await, tweak).await
}

/// `RateLimit-Policy` as (name, q, w) triples.
fn policies(headers: &header::HeaderMap) -> Vec<(String, u64, u64)> {
    let Some(v) = headers.get("ratelimit-policy") else {
        return Vec::new();
    };
    v.to_str()
        .unwrap()
        .split(", ")
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap().trim_matches('"').to_string();
            let (mut q, mut w) = (0, 0);
            for p in parts {
                match p.split_once('=').unwrap() {
                    ("q", v) => q = v.parse().unwrap(),
                    ("w", v) => w = v.parse().unwrap(),
                    other => panic!("unexpected parameter {other:?}"),
                }
            }
            (name, q, w)
        })
        .collect()
}

/// `RateLimit` as (name, r, t).
fn state(headers: &header::HeaderMap) -> (String, u64, u64) {
    let v = headers
        .get("ratelimit")
        .expect("a RateLimit header")
        .to_str()
        .unwrap();
    let mut parts = v.split(';');
    let name = parts.next().unwrap().trim_matches('"').to_string();
    let (mut r, mut t) = (u64::MAX, u64::MAX);
    for p in parts {
        match p.split_once('=').unwrap() {
            ("r", v) => r = v.parse().unwrap(),
            ("t", v) => t = v.parse().unwrap(),
            other => panic!("unexpected parameter {other:?}"),
        }
    }
    (name, r, t)
}

fn p(name: &str, q: u64, w: u64) -> (String, u64, u64) {
    (name.to_string(), q, w)
}

fn retry_after(headers: &header::HeaderMap) -> u64 {
    headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A 429 in the SPEC §2 envelope, exactly.
fn assert_limited(r: &Reply) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"error": {"code": "rate_limited", "message": "Too Many Requests"}})
    );
    assert!(retry_after(&r.headers) >= 1);
}

/// Sends a request with extra headers, to `host` when given (an app
/// hostname resolved to the server).
async fn send(
    s: &TestServer,
    host: Option<&str>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let (client, url) = match host {
        Some(h) => (
            reqwest::Client::builder().resolve(h, addr).build().unwrap(),
            format!("http://{h}:{}{path}", addr.port()),
        ),
        None => (s.client.clone(), format!("{}{path}", s.base)),
    };
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// A private or public app in `env_id`, deployed with no requirements:
/// its hostname.
async fn app(s: &TestServer, env_id: &str, name: &str, access: &str) -> String {
    let r = s
        .post(
            "/v1/apps",
            &s.boot().pat,
            json!({"name": name, "environment_id": env_id, "access_type": access}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["data"]["hostname"].as_str().unwrap().to_string()
}

/// Once a key has used its `credential` quota it gets 429 (envelope,
/// `Retry-After`, headers) while another key goes on; every answer before
/// counts down `r`.
async fn credential_limit_answers_429(backend: Backend) {
    let s = start(backend, |c| c.rate_limits.credential = rule(3, 60)).await;
    let (_, a) = s.create_key(&s.boot().pat, json!({"name": "a"})).await;
    let (_, b) = s.create_key(&s.boot().pat, json!({"name": "b"})).await;

    for (left, reset) in [(2, 20), (1, 40), (0, 60)] {
        let r = s.get("/v1/tokens/me", &a).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(policies(&r.headers), vec![p("credential", 3, 60)]);
        assert_eq!(state(&r.headers), ("credential".into(), left, reset));
        assert!(r.headers.get(header::RETRY_AFTER).is_none());
    }
    let limited = s.get("/v1/tokens/me", &a).await;
    assert_limited(&limited);
    assert_eq!(retry_after(&limited.headers), 20, "T = 60 s / 3");
    assert_eq!(policies(&limited.headers), vec![p("credential", 3, 60)]);
    assert_eq!(state(&limited.headers), ("credential".into(), 0, 60));
    // Any route, any method: the same key is out of requests.
    assert_limited(&s.post("/v1/projects", &a, json!({"name": "x"})).await);

    let other = s.get("/v1/tokens/me", &b).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(state(&other.headers), ("credential".into(), 2, 20));
    s.stop().await;
}

/// A key confined to one environment is charged to it too; the headers
/// name both policies, and `RateLimit` the one closest to running out.
/// Keys of another environment are not affected.
async fn environment_limit_of_a_scoped_key(backend: Backend) {
    let s = start(backend, |c| c.rate_limits.environment = rule(2, 60)).await;
    let sandbox = s.boot().sandbox_id.clone();
    let live = s.boot().live_id.clone();
    let (_, sk) = s
        .create_key(
            &s.boot().pat,
            json!({"name": "s", "environment_id": sandbox}),
        )
        .await;
    let (_, sk2) = s
        .create_key(
            &s.boot().pat,
            json!({"name": "s2", "environment_id": sandbox}),
        )
        .await;
    let (_, lk) = s
        .create_key(&s.boot().pat, json!({"name": "l", "environment_id": live}))
        .await;

    let r = s.get("/v1/tokens/me", &sk).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        policies(&r.headers),
        vec![p("credential", 1500, 60), p("environment", 2, 60)]
    );
    assert_eq!(state(&r.headers), ("environment".into(), 1, 30));
    assert_eq!(s.get("/v1/tokens/me", &sk2).await.status, StatusCode::OK);
    // The environment's quota is shared by its keys.
    let limited = s.get("/v1/tokens/me", &sk).await;
    assert_limited(&limited);
    assert_eq!(state(&limited.headers).0, "environment");
    assert_limited(&s.get("/v1/tokens/me", &sk2).await);

    let other = s.get("/v1/tokens/me", &lk).await;
    assert_eq!(other.status, StatusCode::OK);
    let wide = s.get("/v1/tokens/me", s.key()).await;
    assert_eq!(wide.status, StatusCode::OK);
    assert_eq!(policies(&wide.headers), vec![p("credential", 1500, 60)]);
    s.stop().await;
}

/// `PATCH /v1/environments/{id}` sets the environment's own limit (shown
/// in the environment, audited, applied to the next request, carrying over
/// what was used), and `null` goes back to the default. Connect tokens and
/// app hostnames of the environment are charged to it.
async fn environment_override(backend: Backend) {
    let s = start(backend, |c| c.rate_limits.environment = rule(5, 60)).await;
    let sandbox = s.boot().sandbox_id.clone();
    let live = s.boot().live_id.clone();
    let (_, sk) = s
        .create_key(
            &s.boot().pat,
            json!({"name": "s", "environment_id": sandbox}),
        )
        .await;
    let (_, lk) = s
        .create_key(&s.boot().pat, json!({"name": "l", "environment_id": live}))
        .await;
    let path = format!("/v1/environments/{sandbox}");

    let set = s
        .patch(
            &path,
            &s.boot().pat,
            json!({"rate_limit": {"limit": 2, "window_seconds": 60}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        set.body["data"]["rate_limit"],
        json!({"limit": 2, "window_seconds": 60})
    );
    assert_eq!(set.body["data"]["id"], sandbox.as_str());
    let shown = s.get(&path, &s.boot().pat).await;
    assert_eq!(shown.body["data"]["rate_limit"]["limit"], 2);
    let project = s
        .get(
            &format!("/v1/projects/{}", s.boot().project_id),
            &s.boot().pat,
        )
        .await;
    let envs = project.body["data"]["environments"].as_array().unwrap();
    assert!(envs
        .iter()
        .any(|e| e["id"] == sandbox.as_str() && e["rate_limit"]["limit"] == 2));
    assert!(envs
        .iter()
        .any(|e| e["id"] == live.as_str() && e["rate_limit"].is_null()));

    for left in [1, 0] {
        let r = s.get("/v1/tokens/me", &sk).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(policies(&r.headers).contains(&p("environment", 2, 60)));
        assert_eq!(
            state(&r.headers),
            ("environment".into(), left, 30 * (2 - left))
        );
    }
    assert_limited(&s.get("/v1/tokens/me", &sk).await);
    let other = s.get("/v1/tokens/me", &lk).await;
    assert!(policies(&other.headers).contains(&p("environment", 5, 60)));

    // The hosted side of the environment counts against it as well.
    let host = app(&s, &sandbox, "Limited app", "public").await;
    let minted = send(
        &s,
        Some(&host),
        Method::POST,
        "/v1/connect/tokens",
        &[],
        Some(json!({"user_id": "u-1"})),
    )
    .await;
    assert_limited(&minted);
    assert_eq!(state(&minted.headers).0, "environment");

    let cleared = s
        .patch(&path, &s.boot().pat, json!({"rate_limit": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert!(cleared.body["data"]["rate_limit"].is_null());
    // Two of five used, and this request makes three: two left.
    let r = s.get("/v1/tokens/me", &sk).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(policies(&r.headers).contains(&p("environment", 5, 60)));
    assert_eq!(state(&r.headers), ("environment".into(), 2, 36));
    let minted = send(
        &s,
        Some(&host),
        Method::POST,
        "/v1/connect/tokens",
        &[],
        Some(json!({"user_id": "u-1"})),
    )
    .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    let session = s.get("/v1/connect/session", &token).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);
    assert_eq!(
        policies(&session.headers),
        vec![p("credential", 1500, 60), p("environment", 5, 60)]
    );
    assert_eq!(state(&session.headers), ("environment".into(), 0, 60));

    let events = s
        .get("/v1/audit-events?action=environment.updated", &s.boot().pat)
        .await;
    let events = events.body["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["target"]["id"] == sandbox.as_str()));
    s.stop().await;
}

/// The override's input is checked field by field (400 naming
/// `rate_limit.limit` / `rate_limit.window_seconds`); it needs
/// `projects:write` and a credential reaching the whole project; an
/// unknown environment is 404; an empty body changes nothing.
async fn environment_override_rules(backend: Backend) {
    let s = start(backend, |_| {}).await;
    let sandbox = s.boot().sandbox_id.clone();
    let path = format!("/v1/environments/{sandbox}");
    let pat = s.boot().pat.clone();

    let bad = |body: Value| {
        let (s, path, pat) = (&s, &path, &pat);
        async move { s.patch(path, pat, body).await }
    };
    let r = bad(json!({"rate_limit": {"limit": 0, "window_seconds": 60}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.detail("rate_limit.limit"),
        Some("must be a whole number from 1 to 1000000")
    );
    let r = bad(json!({"rate_limit": {"limit": 10, "window_seconds": 86401}})).await;
    assert_eq!(
        r.detail("rate_limit.window_seconds"),
        Some("must be a whole number from 1 to 86400")
    );
    let r = bad(json!({"rate_limit": {"limit": 10}})).await;
    assert_eq!(
        r.detail("rate_limit.window_seconds"),
        Some("cannot be blank")
    );
    let r = bad(json!({"rate_limit": {"limit": "ten", "window_seconds": 60}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.detail("rate_limit.limit").is_some(), "{}", r.text);
    let r = bad(json!({"rate_limit": {"limit": 1, "window_seconds": 1, "burst": 3}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = bad(json!({"name": "renamed"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let (_, scoped) = s
        .create_key(
            &pat,
            json!({"name": "s", "environment_id": sandbox, "scopes": ["projects:read", "projects:write"]}),
        )
        .await;
    let body = json!({"rate_limit": {"limit": 10, "window_seconds": 60}});
    let r = s.patch(&path, &scoped, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let (_, reader) = s
        .create_key(&pat, json!({"name": "r", "scopes": ["projects:read"]}))
        .await;
    let r = s.patch(&path, &reader, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.detail("scope"), Some("requires the projects:write scope"));
    let r = s
        .patch("/v1/environments/env_unknown", &pat, body.clone())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.patch(&path, &scoped, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "permission before input");

    let unchanged = s.call(Method::PATCH, &path, Some(&pat), None).await;
    assert_eq!(unchanged.status, StatusCode::OK, "{}", unchanged.text);
    assert!(unchanged.body["data"]["rate_limit"].is_null());
    let events = s
        .get("/v1/audit-events?action=environment.updated", &pat)
        .await;
    assert_eq!(
        events.body["data"],
        json!([]),
        "nothing changed, nothing audited"
    );
    s.stop().await;
}

/// An environment's own limit set on one node applies on another within a
/// second (PostgreSQL `NOTIFY`), not only at the periodic reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_reaches_other_nodes() {
    let data = TestData::new(Backend::Postgres).await;
    let a = TestServer::start_with(data.clone(), |_| {}).await;
    let b = TestServer::start_with(data.clone(), |_| {}).await;
    let sandbox = a.boot().sandbox_id.clone();
    let (_, key) = a
        .create_key(a.key(), json!({"name": "s", "environment_id": sandbox}))
        .await;
    let environment_q = |r: &Reply| {
        policies(&r.headers)
            .into_iter()
            .find(|(name, _, _)| name == "environment")
            .map(|(_, q, _)| q)
    };
    assert_eq!(
        environment_q(&b.get("/v1/tokens/me", &key).await),
        Some(3000)
    );

    let r = a
        .patch(
            &format!("/v1/environments/{sandbox}"),
            a.key(),
            json!({"rate_limit": {"limit": 50, "window_seconds": 10}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = environment_q(&b.get("/v1/tokens/me", &key).await);
        if seen == Some(50) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, Some(50), "node B applies the new limit within 1 s");
    b.stop().await;
    a.stop().await;
}

/// `POST /v1/connect/tokens` is limited per (app, user_id): a third token
/// for one user in the window is 429, another user still gets one, and a
/// refused body (400) is not counted against the user.
async fn connect_token_user_limit(backend: Backend) {
    let s = start(backend, |c| c.rate_limits.connect_token_user = rule(2, 60)).await;
    let sandbox = s.boot().sandbox_id.clone();
    let host = app(&s, &sandbox, "Agent", "private").await;
    let mint = |user: &'static str| {
        let (s, host) = (&s, &host);
        async move {
            s.call_host(
                host,
                Method::POST,
                "/v1/connect/tokens",
                Some(s.key()),
                Some(json!({"user_id": user})),
            )
            .await
        }
    };

    let bad = mint("").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        policies(&bad.headers),
        vec![p("credential", 1500, 60), p("environment", 3000, 60)]
    );
    for left in [1, 0] {
        let r = mint("alice").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            policies(&r.headers),
            vec![
                p("credential", 1500, 60),
                p("environment", 3000, 60),
                p("connect_token_user", 2, 60)
            ]
        );
        assert_eq!(state(&r.headers).0, "connect_token_user");
        assert_eq!(state(&r.headers).1, left);
    }
    let limited = mint("alice").await;
    assert_limited(&limited);
    assert_eq!(retry_after(&limited.headers), 30);
    assert_eq!(mint("bob").await.status, StatusCode::CREATED);
    s.stop().await;
}

/// Without a valid credential a request is charged to its client IP: a
/// missing, made-up or malformed credential alike, so guessing keys is
/// limited and answers 429 before 401. Other IPs are unaffected, and a
/// valid key from the limited IP is not charged to it.
async fn ip_limit_without_a_valid_credential(backend: Backend) {
    let s = start(backend, |c| {
        c.trust_forwarded_headers = true;
        c.rate_limits.ip = rule(3, 60);
    })
    .await;
    let made_up =
        gatehouse_core::token::generate(s.state.prefixes(), gatehouse_core::TokenKind::AccessKey);
    let made_up = format!(
        "Bearer {}",
        secrecy::ExposeSecret::expose_secret(&made_up.token)
    );
    fn from<'a>(ip: &'a str, auth: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
        let mut h = vec![("x-forwarded-for", ip)];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        h
    }
    let ip = "198.51.100.7";
    for (left, auth) in [
        (2, None),
        (1, Some(made_up.as_str())),
        (0, Some("Bearer not-a-key")),
    ] {
        let r = send(
            &s,
            None,
            Method::GET,
            "/v1/tokens/me",
            &from(ip, auth),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(policies(&r.headers), vec![p("ip", 3, 60)]);
        assert_eq!(state(&r.headers), ("ip".into(), left, 20 * (3 - left)));
    }
    let limited = send(
        &s,
        None,
        Method::GET,
        "/v1/tokens/me",
        &from(ip, Some(made_up.as_str())),
        None,
    )
    .await;
    assert_limited(&limited);
    assert_eq!(retry_after(&limited.headers), 20);
    assert!(limited.headers.get(header::WWW_AUTHENTICATE).is_none());

    let other = send(
        &s,
        None,
        Method::GET,
        "/v1/tokens/me",
        &from("198.51.100.8", None),
        None,
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {}", s.key());
    let valid = send(
        &s,
        None,
        Method::GET,
        "/v1/tokens/me",
        &from(ip, Some(&bearer)),
        None,
    )
    .await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.text);
    assert_eq!(policies(&valid.headers), vec![p("credential", 1500, 60)]);
    s.stop().await;
}

/// A public app's anonymous callers and the OAuth2 callback are charged
/// to the client IP (the app's requests to its environment too).
async fn public_app_and_callback_are_limited_by_ip(backend: Backend) {
    let s = start(backend, |c| {
        c.trust_forwarded_headers = true;
        c.rate_limits.ip = rule(2, 60);
    })
    .await;
    let host = app(&s, &s.boot().sandbox_id.clone(), "Public", "public").await;
    let xff = [("x-forwarded-for", "203.0.113.20")];
    for left in [1, 0] {
        let r = send(
            &s,
            Some(&host),
            Method::POST,
            "/v1/connect/tokens",
            &xff,
            Some(json!({"user_id": format!("u{left}")})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            policies(&r.headers),
            vec![
                p("ip", 2, 60),
                p("environment", 3000, 60),
                p("connect_token_user", 100, 60)
            ]
        );
        assert_eq!(state(&r.headers), ("ip".into(), left, 30 * (2 - left)));
    }
    let limited = send(
        &s,
        Some(&host),
        Method::GET,
        "/v1/requirements/status?user_id=u1",
        &xff,
        None,
    )
    .await;
    assert_limited(&limited);
    let elsewhere = send(
        &s,
        Some(&host),
        Method::GET,
        "/v1/requirements/status?user_id=u1",
        &[("x-forwarded-for", "203.0.113.21")],
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.text);

    let callback = "/v1/connect/oauth2/callback?code=c&state=unknown-state";
    let xff = [("x-forwarded-for", "203.0.113.30")];
    for left in [1, 0] {
        let r = send(&s, None, Method::GET, callback, &xff, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "the callback page");
        assert!(r.text.contains("<html"), "{}", r.text);
        assert_eq!(policies(&r.headers), vec![p("ip", 2, 60)]);
        assert_eq!(state(&r.headers).1, left);
    }
    let limited = send(&s, None, Method::GET, callback, &xff, None).await;
    assert_limited(&limited);
    assert_eq!(retry_after(&limited.headers), 30);
    s.stop().await;
}

/// `GET /login`: the form's CSRF cookie (`name=value`) and hidden field.
async fn login_form(s: &TestServer, ip: &str) -> (String, String) {
    let r = send(
        s,
        None,
        Method::GET,
        "/login",
        &[("x-forwarded-for", ip)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get("ratelimit").is_none(),
        "the form itself is not limited"
    );
    let cookie = r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let start = r.text.find(r#"name="csrf" value=""#).unwrap() + 19;
    let csrf = r.text[start..].split('"').next().unwrap().to_string();
    (cookie, csrf)
}

async fn post_login(s: &TestServer, ip: &str, password: &str) -> reqwest::Response {
    let (cookie, csrf) = login_form(s, ip).await;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("email", &s.boot().owner_email)
        .append_pair("password", password)
        .append_pair("csrf", &csrf)
        .finish();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", s.base))
        .header("x-forwarded-for", ip)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `POST /login` is limited per IP by `sign_in`: the page keeps its HTML
/// answers (400 for a form it cannot read, 401, then a 429 page with
/// `Retry-After`), every attempt counts and carries the headers; once
/// limited even the right password waits. A signed-in
/// session's API calls are charged to the session.
async fn sign_in_limit(backend: Backend) {
    let s = start(backend, |c| {
        c.trust_forwarded_headers = true;
        c.rate_limits.sign_in = rule(3, 60);
    })
    .await;
    let ip = "192.0.2.50";
    let unreadable = send(
        &s,
        None,
        Method::POST,
        "/login",
        &[("x-forwarded-for", ip)],
        None,
    )
    .await;
    assert_eq!(
        unreadable.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unreadable.text
    );
    assert_eq!(state(&unreadable.headers), ("sign_in".into(), 2, 20));
    for left in [1, 0] {
        let r = post_login(&s, ip, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(policies(r.headers()), vec![p("sign_in", 3, 60)]);
        assert_eq!(
            state(r.headers()),
            ("sign_in".into(), left, 20 * (3 - left))
        );
    }
    let password = s.boot().password.clone();
    let limited = post_login(&s, ip, &password).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(limited.headers()), 20);
    assert_eq!(state(limited.headers()), ("sign_in".into(), 0, 60));
    let page = limited.text().await.unwrap();
    assert!(page.contains("Too many sign-in attempts. Try again in 20 seconds."));

    let signed_in = post_login(&s, "192.0.2.51", &password).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("gh_session="))
        .unwrap();
    let me = send(
        &s,
        None,
        Method::GET,
        "/v1/session",
        &[("cookie", &session)],
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(policies(&me.headers), vec![p("credential", 1500, 60)]);
    let projects = send(
        &s,
        None,
        Method::GET,
        "/v1/projects",
        &[("cookie", &session)],
        None,
    )
    .await;
    assert_eq!(projects.status, StatusCode::OK);
    assert_eq!(state(&projects.headers), ("credential".into(), 1498, 1));
    s.stop().await;
}

/// 2 requests per 2 s: the third is refused with `Retry-After: 1`; a try
/// well before that second is still refused, and one made exactly
/// `Retry-After` seconds later passes.
async fn retry_after_is_never_early(backend: Backend) {
    let s = start(backend, |c| c.rate_limits.credential = rule(2, 2)).await;
    let key = s.key().to_string();
    for _ in 0..2 {
        assert_eq!(s.get("/v1/tokens/me", &key).await.status, StatusCode::OK);
    }
    let limited = s.get("/v1/tokens/me", &key).await;
    let refused_at = Instant::now();
    assert_limited(&limited);
    let wait = retry_after(&limited.headers);
    assert_eq!(wait, 1);
    assert_eq!(state(&limited.headers), ("credential".into(), 0, 2));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_limited(&s.get("/v1/tokens/me", &key).await);
    tokio::time::sleep_until((refused_at + Duration::from_secs(wait)).into()).await;
    let again = s.get("/v1/tokens/me", &key).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(state(&again.headers), ("credential".into(), 0, 2));
    s.stop().await;
}

/// Ops routes, JWKS, pages and assets carry no rate-limit headers and are
/// answered even for a client whose `ip` quota is used up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_routes_carry_no_headers() {
    let s = start(Backend::Sqlite, |c| {
        c.trust_forwarded_headers = true;
        c.rate_limits.ip = rule(1, 3600);
    })
    .await;
    let xff = [("x-forwarded-for", "192.0.2.9")];
    assert_eq!(
        send(&s, None, Method::GET, "/v1/tokens/me", &xff, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_limited(&send(&s, None, Method::GET, "/v1/tokens/me", &xff, None).await);
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/.well-known/jwks.json",
        "/login",
        "/assets/dashboard.css",
        "/connect",
        "/",
    ] {
        let r = send(&s, None, Method::GET, path, &xff, None).await;
        assert_ne!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(r.status.as_u16() < 500, "{path}: {}", r.status);
        assert!(r.headers.get("ratelimit").is_none(), "{path}");
        assert!(r.headers.get("ratelimit-policy").is_none(), "{path}");
    }
    s.stop().await;
}

/// With `[rate_limits] enabled = false` nothing is limited and no header
/// is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_limits_send_nothing() {
    let s = start(Backend::Sqlite, |c| {
        c.rate_limits.enabled = false;
        c.rate_limits.credential = rule(1, 3600);
        c.rate_limits.ip = rule(1, 3600);
    })
    .await;
    for _ in 0..5 {
        let r = s.get("/v1/tokens/me", s.key()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get("ratelimit").is_none());
        let r = s.call(Method::GET, "/v1/tokens/me", None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.headers.get("ratelimit-policy").is_none());
    }
    s.stop().await;
}

/// Three times its capacity in distinct client IPs (`X-Forwarded-For`)
/// leave the limiter
/// holding at most its capacity, and a client being limited that keeps
/// trying during the flood stays limited throughout: the one-off keys do
/// not push out the key that is in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_ips_stays_within_the_cap() {
    use tower::ServiceExt;

    let s = start(Backend::Sqlite, |c| {
        c.trust_forwarded_headers = true;
        c.rate_limits.ip = rule(5, 3600);
    })
    .await;
    let app = gatehouse::http::router(s.state.clone());
    async fn status(app: &axum::Router, ip: &str) -> u16 {
        // From the proxy on loopback, which vouches for `ip`.
        let proxy = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
        let req = axum::http::Request::builder()
            .uri("/v1/tokens/me")
            .header("x-forwarded-for", ip)
            .extension(axum::extract::ConnectInfo(proxy))
            .body(axum::body::Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }
    const HOT: &str = "192.0.2.77";
    for i in 0..6 {
        let want = if i < 5 { 401 } else { 429 };
        assert_eq!(status(&app, HOT).await, want);
    }

    const FLOOD: u32 = 3 * CAPACITY as u32;
    const TASKS: u32 = 4;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut answered = 0u32;
                for i in (t..FLOOD).step_by(TASKS as usize) {
                    let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string();
                    assert_eq!(status(&app, &ip).await, 401, "every new IP has its quota");
                    answered += 1;
                    if t == 0 && i % 1000 == 0 {
                        assert_eq!(status(&app, HOT).await, 429, "after {i} one-off IPs");
                    }
                }
                answered
            })
        })
        .collect();
    let mut answered = 0;
    for t in tasks {
        answered += t.await.unwrap();
    }
    assert_eq!(answered, FLOOD);

    let held = s.state.limits().entry_count();
    assert!(held <= CAPACITY, "{held} keys held, capacity {CAPACITY}");
    assert!(held > CAPACITY / 2, "the table was filled: {held}");
    assert_eq!(status(&app, HOT).await, 429);
    s.stop().await;
}

/// A `redis-server` of this test's own on a free port, stopped on drop.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the shared rate-limit tests");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        conn.write_all(b"PING\r\n").is_ok()
            && conn.read_exact(&mut buf).is_ok()
            && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until every node shares its limits through Redis with `nodes`
/// nodes counted.
async fn wait_shared(servers: &[&TestServer], nodes: u32) {
    let want = Some(SharedState {
        connected: true,
        nodes,
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if servers
            .iter()
            .all(|s| s.state.limits().shared_state() == want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<_> = servers
        .iter()
        .map(|s| s.state.limits().shared_state())
        .collect();
    panic!("the nodes never shared their limits: {seen:?}");
}

/// Sends `per_node` requests with `key` to each node, four at a time per
/// node, and counts what each admitted. No answer may be a 5xx.
async fn load(nodes: &[&TestServer], key: &str, per_node: u32) -> Vec<u32> {
    let mut tasks = Vec::new();
    for node in nodes {
        for _ in 0..4 {
            let (client, url, key) = (
                node.client.clone(),
                format!("{}/v1/tokens/me", node.base),
                key.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..per_node / 4 {
                    let r = client.get(&url).bearer_auth(&key).send().await.unwrap();
                    match r.status() {
                        StatusCode::OK => admitted += 1,
                        StatusCode::TOO_MANY_REQUESTS => {
                            assert!(r.headers().get(header::RETRY_AFTER).is_some());
                        }
                        other => panic!("unexpected {other}"),
                    }
                }
                admitted
            }));
        }
    }
    let mut per = vec![0; nodes.len()];
    for (i, t) in tasks.into_iter().enumerate() {
        per[i / 4] += t.await.unwrap();
    }
    per
}

fn failures(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("gatehouse_rate_limit_redis_failures_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Two nodes on one PostgreSQL database and one Redis, limit 200 per
/// hour: together they admit between 200 and 220 (10 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_limit() {
    let redis = Redis::start();
    let data = TestData::new(Backend::Postgres).await;
    let tweak = |c: &mut Config| {
        c.redis_url = Some(redis.url());
        c.rate_limits.credential = rule(200, 3600);
    };
    let a = TestServer::start_with(data.clone(), tweak).await;
    let b = TestServer::start_with(data.clone(), tweak).await;
    wait_shared(&[&a, &b], 2).await;
    let (_, key) = a.create_key(a.key(), json!({"name": "shared"})).await;

    let per = load(&[&a, &b], &key, 320).await;
    let total: u32 = per.iter().sum();
    assert!(
        (200..=220).contains(&total),
        "admitted {total} ({per:?}) of a limit of 200"
    );
    assert!(per.iter().all(|n| *n > 0), "both nodes served: {per:?}");
    b.stop().await;
    a.stop().await;
}

/// Redis stops mid-test: both nodes keep serving on their own limits (each
/// admits the whole limit) and count the failures in `/metrics`; once
/// Redis is back they share one limit again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_and_recovers() {
    let mut redis = Redis::start();
    let data = TestData::new(Backend::Postgres).await;
    let url = redis.url();
    let tweak = |c: &mut Config| {
        c.redis_url = Some(url.clone());
        c.rate_limits.credential = rule(200, 3600);
    };
    let a = TestServer::start_with(data.clone(), tweak).await;
    let b = TestServer::start_with(data.clone(), tweak).await;
    wait_shared(&[&a, &b], 2).await;
    let (_, during) = a.create_key(a.key(), json!({"name": "during"})).await;
    let (_, after) = a.create_key(a.key(), json!({"name": "after"})).await;
    let before = failures(&a.call(Method::GET, "/metrics", None, None).await.text);

    redis.stop();
    let per = load(&[&a, &b], &during, 240).await;
    assert_eq!(per, vec![200, 200], "each node enforces the limit alone");
    let metrics = a.call(Method::GET, "/metrics", None, None).await.text;
    assert!(failures(&metrics) > before, "failures are counted");
    assert_eq!(
        a.state.limits().shared_state().map(|s| s.connected),
        Some(false)
    );

    redis.resume();
    wait_shared(&[&a, &b], 2).await;
    let per = load(&[&a, &b], &after, 320).await;
    let total: u32 = per.iter().sum();
    assert!(
        (200..=220).contains(&total),
        "shared again: admitted {total} ({per:?}) of 200"
    );
    b.stop().await;
    a.stop().await;
}
