//! The hosted connect page (SPEC §7) in a real headless Chromium: the token
//! leaves the address bar, forms generated from connection-type schemas,
//! inline errors, OAuth2 / action-connector buttons, disconnect, "All set"
//! and the return to `redirect_url`, the expired-link page, and the
//! security headers; and an action-connector account signed in through a
//! real OpenID provider in a popup (granted, denied, a blocked popup, an
//! expired account reconnected). SQLite is enough here: the API underneath
//! is tested on both backends in `connect.rs` and `oauth2.rs`.
//!
//! `GATEHOUSE_SCREENSHOTS=<dir>` makes the happy path save
//! `connect-desktop.png` and `connect-phone.png` there, and the OAuth2
//! tests `connect-oauth2.png` and `connect-expired.png`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/oidc.rs"]
mod oidc;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use browser::{Browser, DESKTOP, PHONE, WAIT};
use common::{Backend, TestData, TestServer};
use fantoccini::{error::CmdError, wd::WindowHandle, Locator};
use gatehouse::config::{OAuth2ProviderConfig, SettingsInput};
use gatehouse_core::oauth2::ProviderTarget;
use oidc::{Lifetimes, Provider, BASIC};
use reqwest::{header, Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

const OPENAI: &str = "dynamiq.connections.OpenAI";
const HTTP_API_KEY: &str = "dynamiq.connections.HttpApiKey";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An OpenAI key and an HTTP API (URL + key).
fn two_connections() -> Value {
    json!([
        {"name": "openai", "type": "connection", "title": "OpenAI",
         "description": "Used to draft replies to your customers.",
         "spec": {"type": "connection", "data": {"type": OPENAI}}},
        {"name": "backend", "type": "connection", "title": "Order system API",
         "description": "Lets the agent look up order status.",
         "spec": {"type": "connection", "data": {"type": HTTP_API_KEY}}}
    ])
}

/// An app deployed with `requirements` in the sandbox: its hostname.
async fn deployed_app(s: &TestServer, name: &str, requirements: Value) -> String {
    s.deploy_app(&s.boot().sandbox_id, name, "private", requirements)
        .await
        .1
}

/// Mints a connect token: (token, hosted-page url).
async fn mint(s: &TestServer, host: &str, body: Value) -> (String, String) {
    let r = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["token"].as_str().unwrap().to_string(),
        r.body["url"].as_str().unwrap().to_string(),
    )
}

/// The end user's requirements as the API sees them: name → status.
async fn statuses(s: &TestServer, token: &str) -> Vec<(String, String)> {
    let r = s.get("/v1/connect/requirements/status", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn requirement_id(s: &Value, name: &str) -> String {
    s["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn card(name: &str) -> String {
    format!("section.requirement[data-name=\"{name}\"]")
}

fn card_in(name: &str, status: &str) -> String {
    format!("section.requirement[data-name=\"{name}\"][data-status=\"{status}\"]")
}

fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("GATEHOUSE_SCREENSHOTS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// An end user opens a minted link: the token leaves the address bar, both
/// generated forms connect, "All set" appears and the page returns to `redirect_url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_both_requirements_then_return() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(&s, "Acme Support Agent", two_connections()).await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let redirect = format!("http://localhost:{port}/healthz");
    let (token, url) = mint(
        &s,
        &host,
        json!({"user_id": "customer-7421", "redirect_url": redirect}),
    )
    .await;
    assert!(url.contains("/connect?token="), "{url}");
    let b = Browser::start().await;

    b.goto(&url).await;
    b.wait_for(&card_in("openai", "pending")).await;
    let here = b.current_url().await;
    assert!(!here.contains(&token) && !here.contains("token="), "{here}");
    assert!(here.ends_with("/connect"), "{here}");
    assert_eq!(
        b.attr("body", "data-page").await.as_deref(),
        Some("connect")
    );
    assert!(b.text("h1").await.contains("Acme Support Agent"));
    assert!(b.text(".who").await.contains("customer-7421"));
    assert!(b.text(&card("openai")).await.contains("Not connected"));
    // Secret fields are password inputs; URL fields are url inputs.
    assert_eq!(
        b.attr("#req-openai-api_key", "type").await.as_deref(),
        Some("password")
    );
    assert_eq!(
        b.attr("#req-openai-api_key", "autocomplete")
            .await
            .as_deref(),
        Some("off")
    );
    assert_eq!(
        b.attr("#req-backend-url", "type").await.as_deref(),
        Some("url")
    );
    assert!(b
        .text("label[for=\"req-openai-api_key\"]")
        .await
        .contains("API key"));
    assert!(b.text("label[for=\"req-backend-url\"]").await.contains('*'));

    b.fill("#req-openai-api_key", "sk-test-123456").await;
    b.click(&format!("{} button[type=submit]", card("openai")))
        .await;
    b.wait_for(&card_in("openai", "completed")).await;
    let openai = b.text(&card("openai")).await;
    assert!(openai.contains("Connected"), "{openai}");
    assert!(!b.exists("#all-set").await);
    assert!(b.text("#summary").await.contains("1 of 2 connected"));

    if let Some(dir) = screenshot_dir() {
        b.screenshot_full_page(&dir.join("connect-desktop.png"), DESKTOP.0, DESKTOP)
            .await;
        b.set_size(PHONE).await;
        b.screenshot(&dir.join("connect-phone.png")).await;
        b.set_size(DESKTOP).await;
    }

    b.fill("#req-backend-url", "https://orders.example.com/v1")
        .await;
    b.fill("#req-backend-api_key", "ord-key-789").await;
    b.click(&format!("{} button[type=submit]", card("backend")))
        .await;
    b.wait_for_text("#all-set", "All set").await;
    if let Some(dir) = screenshot_dir() {
        b.set_size(PHONE).await;
        b.screenshot(&dir.join("connect-all-set-phone.png")).await;
        b.set_size(DESKTOP).await;
    }
    assert!(b.exists(&card_in("backend", "completed")).await);
    assert!(b
        .text("#return-link")
        .await
        .contains("Return to Acme Support Agent"));
    assert_eq!(
        statuses(&s, &token).await,
        vec![
            ("openai".into(), "completed".into()),
            ("backend".into(), "completed".into())
        ]
    );

    b.wait_until("the return to redirect_url", || async {
        b.current_url().await == redirect
    })
    .await;
    b.close().await;
}

/// Bad credentials show the API's message under the field (aria-invalid,
/// aria-describedby) and the requirement stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_show_inline_errors() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(&s, "Acme", two_connections()).await;
    let (token, url) = mint(&s, &host, json!({"user_id": "u-1"})).await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("openai", "pending")).await;

    // An empty required key.
    b.click(&format!("{} button[type=submit]", card("openai")))
        .await;
    let error = b
        .wait_for_text("#req-openai-api_key-error", "cannot be blank")
        .await;
    assert_eq!(error.attr("role").await.unwrap().as_deref(), Some("alert"));
    assert_eq!(
        b.attr("#req-openai-api_key", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    assert!(b
        .attr("#req-openai-api_key", "aria-describedby")
        .await
        .unwrap_or_default()
        .contains("req-openai-api_key-error"));
    assert!(b.exists(&card_in("openai", "pending")).await);

    // Not a URL, with a key: only the URL is wrong.
    b.fill("#req-backend-url", "not a url").await;
    b.fill("#req-backend-api_key", "k-1").await;
    b.click(&format!("{} button[type=submit]", card("backend")))
        .await;
    let url_error = b.wait_for("#req-backend-url-error").await;
    assert!(!url_error.text().await.unwrap().is_empty());
    if let Some(dir) = screenshot_dir() {
        b.screenshot_full_page(&dir.join("connect-errors.png"), DESKTOP.0, DESKTOP)
            .await;
    }
    assert!(!b.exists("#req-backend-api_key-error").await);
    assert!(b.exists(&card_in("backend", "pending")).await);

    // Fixing the value clears the error and connects.
    b.fill("#req-backend-url", "https://api.example.com").await;
    b.click(&format!("{} button[type=submit]", card("backend")))
        .await;
    b.wait_for(&card_in("backend", "completed")).await;
    assert!(!b.exists("#req-backend-url-error").await);
    assert_eq!(
        statuses(&s, &token).await,
        vec![
            ("openai".into(), "pending".into()),
            ("backend".into(), "completed".into())
        ]
    );
    b.close().await;
}

/// An expired token and a garbage token each get the "expired or no longer
/// valid" page, and a token revoked while the page is open turns it into that page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_invalid_links() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(&s, "Acme", two_connections()).await;
    let (good, url) = mint(&s, &host, json!({"user_id": "u-2"})).await;
    let payload = good.split('.').nth(1).unwrap();
    let mut claims: gatehouse::crypto::jwt::ConnectClaims =
        serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    let now = gatehouse_core::time::now_ms() / 1000;
    claims.iat = now - 3 * 3600;
    claims.nbf = now - 3 * 3600;
    claims.exp = now - 2 * 3600;
    claims.jti = "expired-jti".into();
    let expired = s.state.signing().sign(&claims).unwrap();
    let b = Browser::start().await;

    for token in [expired.as_str(), "garbage", "aaa.bbb.ccc"] {
        b.goto(&format!("{}/connect?token={token}", s.base)).await;
        b.wait_for("body[data-page=\"connect-error\"]").await;
        assert!(
            b.text("h1").await.contains("expired or is no longer valid"),
            "{token}"
        );
        assert!(b.text("main").await.contains("ask for a new link"));
        let here = b.current_url().await;
        assert!(!here.contains("token="), "{here}");
    }
    if let Some(dir) = screenshot_dir() {
        b.set_size(PHONE).await;
        b.screenshot(&dir.join("connect-expired-phone.png")).await;
        b.set_size(DESKTOP).await;
    }

    // Open the page, then the token is revoked: the next call shows the notice.
    b.goto(&url).await;
    b.wait_for(&card_in("openai", "pending")).await;
    let r = s.delete("/v1/connect/session", &good).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    b.fill("#req-openai-api_key", "sk-late").await;
    b.click(&format!("{} button[type=submit]", card("openai")))
        .await;
    b.wait_for("body[data-page=\"connect-error\"]").await;
    assert!(b.text("h1").await.contains("expired or is no longer valid"));
    assert!(!b.exists("section.requirement").await);
    b.close().await;
}

/// `/connect` (valid, invalid, missing token) and the assets carry the CSP,
/// `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and nosniff, and
/// the page has no inline script or style.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_no_inline_code() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(&s, "Acme <Agent>", two_connections()).await;
    let (token, _) = mint(&s, &host, json!({"user_id": "u-3"})).await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let base = s.base.clone();
        async move { client.get(format!("{base}{path}")).send().await.unwrap() }
    };

    for (path, status) in [
        (format!("/connect?token={token}"), StatusCode::OK),
        (
            "/connect?token=garbage".to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        ("/connect".to_string(), StatusCode::BAD_REQUEST),
    ] {
        let r = get(path.clone()).await;
        assert_eq!(r.status(), status, "{path}");
        let h = r.headers().clone();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("<script type=\"module\" src=\"/assets/connect.js\"></script>"));
        assert_eq!(html.matches("<script").count(), 1, "{path}: {html}");
        assert!(
            !html.contains("<style") && !html.contains(" style="),
            "{path}"
        );
        assert!(!html.contains("\"error\""), "{path}: no JSON");
        if status == StatusCode::OK {
            assert!(html.contains("data-page=\"connect\""));
            assert!(html.contains("id=\"requirements\""));
            assert!(
                html.contains("Acme &lt;Agent&gt;"),
                "the app name is escaped"
            );
            assert!(html.contains("u-3"));
        } else {
            assert!(html.contains("data-page=\"connect-error\""));
        }
    }

    for (name, content_type) in [
        ("connect.js", "text/javascript; charset=utf-8"),
        ("connect-session.js", "text/javascript; charset=utf-8"),
        ("connect-forms.js", "text/javascript; charset=utf-8"),
        ("connect-cards.js", "text/javascript; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("connect.css", "text/css; charset=utf-8"),
        ("base.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let r = get(format!("/assets/{name}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let missing = s.call(Method::GET, "/assets/secrets.txt", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");

    // Management surface only.
    let on_app = s
        .call_host(&host, Method::GET, "/connect", None, None)
        .await;
    assert_eq!(on_app.status, StatusCode::NOT_FOUND);
}

/// A connected requirement can be replaced (it stays connected) and
/// disconnected, which flips it back to pending on the page and in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_returns_to_pending() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(&s, "Acme", two_connections()).await;
    let (token, url) = mint(&s, &host, json!({"user_id": "u-4"})).await;
    let reqs = s.get("/v1/connect/requirements", &token).await;
    let openai_id = requirement_id(&reqs.body, "openai");
    let r = s
        .post(
            &format!("/v1/connect/requirements/{openai_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let b = Browser::start().await;

    b.goto(&url).await;
    b.wait_for(&card_in("openai", "completed")).await;
    let meta = b.text(&format!("{} .req-meta", card("openai"))).await;
    assert!(meta.starts_with("Connected"), "{meta}");
    assert!(
        b.exists(&format!("{} .req-meta time[datetime]", card("openai")))
            .await
    );

    // Replace: the form opens on demand, submits as "Replace", then closes.
    let form = "#req-openai-form";
    assert!(b.attr(form, "hidden").await.is_some());
    b.click(&format!("{} button[data-action=replace]", card("openai")))
        .await;
    assert!(b.attr(form, "hidden").await.is_none());
    let submit = format!("{form} button[type=submit]");
    assert_eq!(b.text(&submit).await, "Replace");
    b.fill("#req-openai-api_key", "sk-2").await;
    b.click(&submit).await;
    b.wait_for(&format!("{form}[hidden]")).await;
    assert!(b.exists(&card_in("openai", "completed")).await);
    assert!(!b.exists(".field-error, .form-error").await);

    b.click(&format!(
        "{} button[data-action=disconnect]",
        card("openai")
    ))
    .await;
    b.wait_for(&card_in("openai", "pending")).await;
    assert!(b.text(&card("openai")).await.contains("Not connected"));
    assert!(b.exists("#req-openai-api_key").await);
    assert_eq!(
        statuses(&s, &token).await[0],
        ("openai".into(), "pending".into())
    );
    b.close().await;
}

/// `/robots.txt` keeps search engines out and `/favicon.ico` is an image,
/// on the management surface only (SPEC §10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_and_favicon() {
    let s = TestServer::start(Backend::Sqlite).await;
    let robots = reqwest::get(format!("{}/robots.txt", s.base))
        .await
        .unwrap();
    assert_eq!(robots.status(), StatusCode::OK);
    assert!(robots.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = robots.text().await.unwrap();
    assert!(text.lines().any(|l| l == "Disallow: /"), "{text}");
    assert!(text.lines().any(|l| l == "User-agent: *"), "{text}");

    let icon = reqwest::get(format!("{}/favicon.ico", s.base))
        .await
        .unwrap();
    assert_eq!(icon.status(), StatusCode::OK);
    assert!(icon.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("image/"));
    assert!(icon.text().await.unwrap().contains("<svg"));

    let host = deployed_app(&s, "Acme", two_connections()).await;
    for path in ["/robots.txt", "/favicon.ico"] {
        let r = s.call_host(&host, Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path} on an app host");
    }
}

/// A token minted without a credential (a public app) may only add: the
/// page shows what is connected without offering to replace or disconnect
/// it, and still offers what is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_only_tokens_offer_no_replace_or_disconnect() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, host) = s
        .deploy_app(&s.boot().sandbox_id, "Open", "public", two_connections())
        .await;
    let anonymous = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            None,
            Some(json!({"user_id": "u-add"})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::CREATED, "{}", anonymous.text);
    let token = anonymous.body["token"].as_str().unwrap().to_string();
    let url = anonymous.body["url"].as_str().unwrap().to_string();
    let session = s.get("/v1/connect/session", &token).await;
    assert_eq!(session.body["data"]["add_only"], true, "{}", session.text);
    let (keyed, _) = mint(&s, &host, json!({"user_id": "u-add"})).await;
    assert_eq!(
        s.get("/v1/connect/session", &keyed).await.body["data"]["add_only"],
        false
    );

    let reqs = s.get("/v1/connect/requirements", &token).await;
    let openai_id = requirement_id(&reqs.body, "openai");
    let r = s
        .post(
            &format!("/v1/connect/requirements/{openai_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("openai", "completed")).await;
    b.wait_for(&card_in("backend", "pending")).await;
    let openai = card("openai");
    assert!(b.exists(&format!("{openai} #req-openai-locked")).await);
    assert!(
        !b.exists(&format!("{openai} button")).await,
        "no controls on a connected card"
    );
    assert!(!b.exists("#req-openai-form").await);
    assert!(
        b.exists("#req-backend-form").await,
        "what is pending can be connected"
    );
    b.close().await;

    // The page only mirrors the API, which refuses the change itself.
    let replaced = s
        .post(
            &format!("/v1/connect/requirements/{openai_id}/credentials"),
            &token,
            json!({"type": OPENAI, "config": {"api_key": "sk-2"}}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::FORBIDDEN, "{}", replaced.text);
}

/// The Connect button of an OAuth2 connection and of an action-connector
/// account shows the API's reason when the link cannot start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_and_action_connector_errors_are_shown() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = deployed_app(
        &s,
        "Acme",
        json!([
            {"name": "github", "type": "connection", "title": "GitHub",
             "spec": {"type": "connection", "data": {"type": "dynamiq.connections.GitHubOAuth2"}}},
            {"name": "mail", "type": "pipedream_account",
             "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}}}
        ]),
    )
    .await;
    let (_, url) = mint(&s, &host, json!({"user_id": "u-5"})).await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("mail", "pending")).await;

    for (name, reason) in [
        ("mail", "no OAuth2 provider is configured for gmail"),
        (
            "github",
            "no OAuth2 provider is configured for dynamiq.connections.GitHubOAuth2",
        ),
    ] {
        let button = format!("{} button[data-action=authorize]", card(name));
        assert_eq!(b.find(&button).await.text().await.unwrap(), "Connect");
        b.click(&button).await;
        let error = b.wait_for_text(&format!("#req-{name}-error"), reason).await;
        assert_eq!(error.attr("role").await.unwrap().as_deref(), Some("alert"));
        assert!(b
            .attr(&button, "aria-describedby")
            .await
            .unwrap_or_default()
            .contains(&format!("req-{name}-error")));
        assert!(b.exists(&card_in(name, "pending")).await);
    }
    assert!(b.current_url().await.ends_with("/connect"));
    // The popup opened by each click closed again with the error.
    b.wait_until("the popup to close", || async {
        b.windows().await.len() == 1
    })
    .await;
    b.close().await;
}

// ------------------------------------------------- OAuth2 sign-in in a popup

/// The card's message when the user cancels at the provider.
const DENIED: &str = "Not connected: you did not grant access.";

/// Gatehouse on a port known before it starts, and a real OpenID provider
/// (issuing tokens for `lifetimes`) redirecting to it, configured in the
/// file for the `gmail` connector.
async fn with_provider(lifetimes: Lifetimes) -> (TestServer, Provider) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let redirect = format!("http://localhost:{port}/v1/connect/oauth2/callback");
    let idp = Provider::start(&[BASIC], &redirect, lifetimes);
    let issuer = idp.issuer.clone();
    let data = TestData::new(Backend::Sqlite).await;
    let s = TestServer::start_on(data, listener, move |c| {
        let settings = SettingsInput {
            authorize_url: Some(format!("{issuer}/auth")),
            token_url: Some(format!("{issuer}/token")),
            userinfo_url: Some(format!("{issuer}/me")),
            issuer: Some(issuer.clone()),
            client_id: Some(BASIC.id.into()),
            client_secret: Some(SecretString::from(BASIC.secret)),
            scopes: vec!["openid".into(), "email".into()],
            client_auth: Some(BASIC.auth.into()),
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
    })
    .await;
    (s, idp)
}

/// The id of the app at `host`.
async fn app_id(s: &TestServer, host: &str) -> String {
    let r = s.get("/v1/apps", s.key()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["hostname"] == host)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An OpenAI key and a Gmail account.
fn key_and_gmail() -> Value {
    json!([
        {"name": "openai", "type": "connection", "title": "OpenAI",
         "spec": {"type": "connection", "data": {"type": OPENAI}}},
        {"name": "mail", "type": "action_connector_account", "title": "Gmail",
         "description": "Reads and sends mail for you.",
         "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}}
    ])
}

/// Connects the OpenAI card with its form.
async fn connect_openai(b: &Browser) {
    b.fill("#req-openai-api_key", "sk-test-123456").await;
    b.click(&format!("{} button[type=submit]", card("openai")))
        .await;
    b.wait_for(&card_in("openai", "completed")).await;
}

/// Presses the card's Connect / Reconnect button and switches to the popup
/// it opens: (the hosted page's window, the popup's).
async fn open_popup(b: &Browser, name: &str) -> (WindowHandle, WindowHandle) {
    let main = b.window().await;
    let known = b.windows().await;
    b.click(&format!("{} button[data-action=authorize]", card(name)))
        .await;
    let popup = b.switch_to_new_window(&known).await;
    (main, popup)
}

/// One step at the provider, on whichever page the popup shows: signs in
/// as `login` (any password), or grants (or with `deny`, cancels) consent.
/// Errors when the window closed meanwhile.
async fn provider_step(b: &Browser, login: &str, deny: bool) -> Result<(), CmdError> {
    let c = &b.client;
    let url = c.current_url().await?.to_string();
    if !c
        .find_all(Locator::Css("input[name=login]"))
        .await?
        .is_empty()
    {
        c.find(Locator::Css("input[name=login]"))
            .await?
            .send_keys(login)
            .await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys("any-password")
            .await?;
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
    } else if !c
        .find_all(Locator::Css("button[type=submit]"))
        .await?
        .is_empty()
    {
        let target = if deny {
            "a[href*=\"/abort\"]"
        } else {
            "button[type=submit]"
        };
        c.find(Locator::Css(target)).await?.click().await?;
    } else {
        return Ok(());
    }
    // Until the form's answer has loaded.
    let started = Instant::now();
    while c.current_url().await?.as_str() == url && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Drives the popup through the provider's sign-in and consent pages
/// (whichever it shows) until it closes by itself, then switches back.
async fn through_provider(
    b: &Browser,
    (main, popup): (WindowHandle, WindowHandle),
    login: &str,
    deny: bool,
) {
    let started = Instant::now();
    while b.windows().await.contains(&popup) {
        // An error: the popup closed in the middle of the step.
        let _ = provider_step(b, login, deny).await;
        assert!(
            started.elapsed() < WAIT * 2,
            "the popup did not close by itself"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.switch_to(&main).await;
}

/// The brief's walkthrough: the API key form, then Gmail through the
/// provider's own sign-in and consent pages in a popup that closes itself;
/// the card says who is connected, "All set" follows and the page returns
/// to `redirect_url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_connector_account_signs_in_in_a_popup() {
    let (s, idp) = with_provider(Lifetimes::default()).await;
    let host = deployed_app(&s, "Mail agent", key_and_gmail()).await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    let redirect = format!("http://localhost:{port}/healthz");
    let (token, url) = mint(
        &s,
        &host,
        json!({"user_id": "ada", "redirect_url": redirect}),
    )
    .await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("mail", "pending")).await;
    connect_openai(&b).await;
    let button = format!("{} button[data-action=authorize]", card("mail"));
    assert_eq!(b.text(&button).await, "Connect");

    let (main, popup) = open_popup(&b, "mail").await;
    assert_eq!(b.windows().await.len(), 2);
    b.wait_for("input[name=login]").await;
    assert!(
        b.current_url().await.starts_with(&idp.issuer),
        "the popup is at the provider"
    );
    b.fill("input[name=login]", "ada@example.com").await;
    b.fill("input[name=password]", "whatever").await;
    b.click("button[type=submit]").await;
    b.wait_until("the consent page", || async {
        !b.exists("input[name=login]").await && b.exists("button[type=submit]").await
    })
    .await;
    b.click("button[type=submit]").await;
    b.wait_for_window_closed(&popup, &main).await;

    b.wait_for(&card_in("mail", "completed")).await;
    let mail = b.text(&card("mail")).await;
    assert!(mail.contains("Connected as ada@example.com"), "{mail}");
    assert_eq!(
        b.text(&format!("{} .req-account", card("mail"))).await,
        "ada@example.com"
    );
    assert!(b.exists(&card_in("openai", "completed")).await);
    b.wait_for_text("#all-set", "All set").await;
    if let Some(dir) = screenshot_dir() {
        b.screenshot_full_page(&dir.join("connect-oauth2.png"), DESKTOP.0, DESKTOP)
            .await;
    }
    assert_eq!(
        statuses(&s, &token).await,
        vec![
            ("openai".into(), "completed".into()),
            ("mail".into(), "completed".into())
        ]
    );
    b.wait_until("the return to redirect_url", || async {
        b.current_url().await == redirect
    })
    .await;
    b.close().await;
}

/// Cancelling at the provider: the popup closes, the card says access was
/// not granted and stays pending, and what was connected stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_at_the_provider_stays_pending() {
    let (s, _idp) = with_provider(Lifetimes::default()).await;
    let host = deployed_app(&s, "Mail agent", key_and_gmail()).await;
    let (token, url) = mint(&s, &host, json!({"user_id": "ada"})).await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("mail", "pending")).await;
    connect_openai(&b).await;

    let (main, popup) = open_popup(&b, "mail").await;
    b.wait_for("input[name=login]").await;
    b.fill("input[name=login]", "ada@example.com").await;
    b.fill("input[name=password]", "whatever").await;
    b.click("button[type=submit]").await;
    b.wait_until("the consent page", || async {
        !b.exists("input[name=login]").await && b.exists("a[href*=\"/abort\"]").await
    })
    .await;
    b.click("a[href*=\"/abort\"]").await;
    b.wait_for_window_closed(&popup, &main).await;

    let error = b.wait_for_text("#req-mail-error", DENIED).await;
    assert_eq!(error.attr("role").await.unwrap().as_deref(), Some("alert"));
    assert!(b.exists(&card_in("mail", "pending")).await);
    assert!(b.text(&card("mail")).await.contains("Not connected"));
    assert!(b.exists(&card_in("openai", "completed")).await);
    assert!(!b.exists("#all-set").await);
    let button = format!("{} button[data-action=authorize]", card("mail"));
    assert_eq!(b.text(&button).await, "Connect");
    assert_eq!(b.attr(&button, "disabled").await, None);
    assert_eq!(
        statuses(&s, &token).await,
        vec![
            ("openai".into(), "completed".into()),
            ("mail".into(), "pending".into())
        ]
    );
    b.close().await;
}

/// A popup the browser refuses leaves a link on the card that opens the
/// sign-in; an account that expired says so and offers "Reconnect", which
/// signs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_popup_and_expired_account() {
    // Tokens the provider stops refreshing after 3 s.
    let lifetimes = Lifetimes {
        access_seconds: 2,
        refresh_seconds: 3,
        refreshed_access_seconds: None,
    };
    let (s, idp) = with_provider(lifetimes).await;
    let host = deployed_app(&s, "Mail agent", key_and_gmail()).await;
    let (_, url) = mint(&s, &host, json!({"user_id": "ada"})).await;
    let b = Browser::start().await;
    b.goto(&url).await;
    b.wait_for(&card_in("mail", "pending")).await;
    connect_openai(&b).await;

    // The browser blocks popups: window.open answers null.
    b.client
        .execute("window.open = () => null;", vec![])
        .await
        .unwrap();
    b.click(&format!("{} button[data-action=authorize]", card("mail")))
        .await;
    let link = "#req-mail-blocked a[data-action=open-popup]";
    b.wait_for(link).await;
    assert!(b
        .text("#req-mail-blocked")
        .await
        .contains("Your browser blocked the sign-in window"));
    let href = b.attr(link, "href").await.unwrap();
    assert!(href.starts_with(&format!("{}/auth?", idp.issuer)), "{href}");
    assert_eq!(b.windows().await.len(), 1);

    // The link itself opens the window (window.open still answers null),
    // and the sign-in reports back to the page as from a popup.
    let main = b.window().await;
    let known = b.windows().await;
    b.click(link).await;
    let popup = b.switch_to_new_window(&known).await;
    through_provider(&b, (main.clone(), popup), "ada@example.com", false).await;
    b.wait_for(&card_in("mail", "completed")).await;
    assert!(!b.exists("#req-mail-blocked").await);
    assert!(b
        .text(&card("mail"))
        .await
        .contains("Connected as ada@example.com"));
    b.wait_for("#all-set").await;

    // Later the provider refuses the refresh token (a reveal tries it):
    // the account expires.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let app = app_id(&s, &host).await;
    let revealed = s
        .get(
            &format!("/v1/apps/{app}/end-users/ada/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(revealed.status, StatusCode::OK, "{}", revealed.text);
    let env = s.boot().sandbox_id.clone();
    let user = s
        .get(&format!("/v1/end-users/ada?environment_id={env}"), s.key())
        .await;
    assert_eq!(
        user.body["data"]["accounts"][0]["status"], "expired",
        "{}",
        user.text
    );
    // A fresh session at the provider, as on another day: this provider
    // keeps grants only as long as refresh tokens.
    b.goto(&idp.url("/.well-known/openid-configuration")).await;
    b.client.delete_all_cookies().await.unwrap();
    b.goto(&url).await;
    b.wait_for(&card_in("mail", "pending")).await;
    let expired = format!("{}[data-connection=expired]", card("mail"));
    assert!(b.exists(&expired).await);
    let text = b.text(&card("mail")).await;
    assert!(
        text.contains("Expired") && text.contains("Your connection expired"),
        "{text}"
    );
    let button = format!("{} button[data-action=authorize]", card("mail"));
    assert_eq!(b.text(&button).await, "Reconnect");
    assert!(b
        .attr(&button, "aria-describedby")
        .await
        .unwrap_or_default()
        .contains("req-mail-expired"));
    assert!(!b.exists("#all-set").await);
    if let Some(dir) = screenshot_dir() {
        b.screenshot_full_page(&dir.join("connect-expired.png"), DESKTOP.0, DESKTOP)
            .await;
    }

    // Whether the provider asks again is its business: the popup may
    // close by itself at once.
    b.client
        .execute(
            "window.opened = 0; const open = window.open; \
             window.open = (...args) => { window.opened += 1; return open.apply(window, args); };",
            vec![],
        )
        .await
        .unwrap();
    let main = b.window().await;
    let known = b.windows().await;
    b.click(&button).await;
    let started = Instant::now();
    while !b.exists(&card_in("mail", "completed")).await {
        let new = b.windows().await.into_iter().find(|w| !known.contains(w));
        if let Some(popup) = new {
            // It may have closed already.
            if b.client.switch_to_window(popup.clone()).await.is_ok() {
                through_provider(&b, (main.clone(), popup), "ada@example.com", false).await;
            } else {
                b.switch_to(&main).await;
            }
        }
        assert!(started.elapsed() < WAIT * 2, "the reconnect did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened = b.client.execute("return window.opened", vec![]).await;
    assert_eq!(opened.unwrap(), json!(1), "one popup");
    assert!(!b.exists(&expired).await);
    assert!(b
        .text(&card("mail"))
        .await
        .contains("Connected as ada@example.com"));
    b.wait_for_text("#all-set", "All set").await;
    b.close().await;
}
