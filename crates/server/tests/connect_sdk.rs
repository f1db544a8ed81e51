//! The browser SDK (SPEC §11) in a real headless Chromium: a platform's
//! page on another loopback origin imports `/sdk/connect.js` from
//! Gatehouse, reads the connect-token API with the token (CORS), opens the
//! hosted page in a popup from a button, the end user fills the credential,
//! and the page's promise resolves with `complete` (the popup closing
//! itself). The same page on an origin the token does not list gets
//! neither CORS nor the hosted page's message: closing the popup resolves
//! it with `closed`. In `modal` mode the page frames the hosted page (its
//! `frame-ancestors` lists the token's origins) and resolves the same way;
//! until the user is done, the page links to the token's
//! `error_redirect_url`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use axum::{response::Html, routing::get, Router};
use browser::Browser;
use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The platform's page: imports the SDK named in `?sdk=`, reads
/// `GET /v1/connect/session` from `?api=` with `?token=` (showing whether
/// CORS let it), and opens `?url=` with `openConnect` on a click.
const PLATFORM_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body>
<button id="go" type="button">Connect your accounts</button>
<p id="cors">pending</p>
<p id="hook"></p>
<p id="out"></p>
<script type="module">
const q = new URLSearchParams(location.search);
const { openConnect } = await import(q.get('sdk'));
const show = (id, text) => { document.getElementById(id).textContent = text; };
fetch(q.get('api') + '/v1/connect/session', { headers: { Authorization: 'Bearer ' + q.get('token') } })
  .then((r) => r.json())
  .then((j) => show('cors', 'readable:' + j.data.user_id), () => show('cors', 'blocked'));
document.getElementById('go').addEventListener('click', () => {
  openConnect({ url: q.get('url'), mode: q.get('mode') || 'popup', onComplete: (r) => show('hook', 'onComplete:' + r.user_id) })
    .then((r) => show('out', JSON.stringify(r)), (e) => show('out', 'error:' + e.message));
});
document.getElementById('go').dataset.ready = 'yes';
</script>
</body></html>"#;

/// Serves [`PLATFORM_PAGE`] on a free loopback port.
async fn platform_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/", get(|| async { Html(PLATFORM_PAGE) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn page_url(origin: &str, s: &TestServer, token: &str, url: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("sdk", &format!("{}/sdk/connect.js", s.base))
        .append_pair("api", &s.base)
        .append_pair("token", token)
        .append_pair("url", url)
        .finish();
    format!("{origin}/?{query}")
}

async fn mint(s: &TestServer, host: &str, user: &str, origin: &str) -> (String, String) {
    let r = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            Some(s.key()),
            Some(json!({"user_id": user, "allowed_origins": [origin],
                        "error_redirect_url": format!("{origin}/failed")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["token"].as_str().unwrap().to_string(),
        r.body["url"].as_str().unwrap().to_string(),
    )
}

/// An app that needs one OpenAI key, deployed: its hostname.
async fn shop_app(s: &TestServer) -> String {
    s.deploy_app(
        &s.boot().sandbox_id,
        "Shop Agent",
        "private",
        json!([{"name": "openai", "type": "connection",
                "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}}]),
    )
    .await
    .1
}

/// Presses the page's button and fills the OpenAI key in the popup it
/// opens; returns (the platform page's window, the popup's).
async fn connect_in_popup(
    b: &Browser,
) -> (fantoccini::wd::WindowHandle, fantoccini::wd::WindowHandle) {
    b.wait_for("#go[data-ready=yes]").await;
    let main = b.window().await;
    let known = b.windows().await;
    b.click("#go").await;
    let popup = b.switch_to_new_window(&known).await;
    b.wait_for("#req-openai-api_key").await;
    b.fill("#req-openai-api_key", "sk-test-123456").await;
    b.click("section.requirement[data-name=\"openai\"] button[type=submit]")
        .await;
    (main, popup)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_popup_resolves_complete_only_for_allowed_origins() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = shop_app(&s).await;
    let port = platform_server().await;
    let allowed = format!("http://shop.localhost:{port}");
    let b = Browser::start().await;

    // The listed origin: CORS lets the page read the session, and the
    // hosted page's message resolves the promise; the popup closes.
    let (token, url) = mint(&s, &host, "shopper", &allowed).await;
    b.goto(&page_url(&allowed, &s, &token, &url)).await;
    b.wait_for_text("#cors", "readable:shopper").await;
    let (main, popup) = connect_in_popup(&b).await;
    b.wait_for_window_closed(&popup, &main).await;
    b.wait_for_text("#out", r#"{"status":"complete","user_id":"shopper"}"#)
        .await;
    b.wait_for_text("#hook", "onComplete:shopper").await;

    // An origin the token does not list (same page, another host): no
    // CORS, and no message even once everything is connected; closing
    // the popup resolves the promise with `closed`.
    let (token, url) = mint(&s, &host, "window-shopper", &allowed).await;
    let other = format!("http://127.0.0.1:{port}");
    b.goto(&page_url(&other, &s, &token, &url)).await;
    b.wait_for_text("#cors", "blocked").await;
    let (main, _popup) = connect_in_popup(&b).await;
    b.wait_for("#all-set").await;
    b.client.close_window().await.unwrap();
    b.switch_to(&main).await;
    b.wait_for_text("#out", r#"{"status":"closed"}"#).await;
    assert_eq!(b.text("#hook").await, "", "onComplete must not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_modal_frames_the_page_for_allowed_origins() {
    let s = TestServer::start(Backend::Sqlite).await;
    let host = shop_app(&s).await;
    let port = platform_server().await;
    let allowed = format!("http://shop.localhost:{port}");
    let (token, url) = mint(&s, &host, "framed-shopper", &allowed).await;

    // The hosted page lets exactly the token's origins frame it.
    let page = reqwest::get(&url).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains(&format!("frame-ancestors {allowed}")), "{csp}");
    // The popup needs its opener: no opener policy but `unsafe-none`.
    let coop = page.headers().get("cross-origin-opener-policy");
    assert!(coop.is_none_or(|v| v == "unsafe-none"), "{coop:?}");

    let b = Browser::start().await;
    b.goto(&format!(
        "{}&mode=modal",
        page_url(&allowed, &s, &token, &url)
    ))
    .await;
    b.wait_for("#go[data-ready=yes]").await;
    b.click("#go").await;
    b.wait_for("iframe").await;
    b.client.enter_frame(0).await.unwrap();
    b.wait_for("#req-openai-api_key").await;
    // Until it is complete, the page offers the way back to the token's
    // error_redirect_url.
    assert_eq!(
        b.attr("#cancel-link", "href").await.as_deref(),
        Some(format!("{allowed}/failed").as_str())
    );
    b.fill("#req-openai-api_key", "sk-test-123456").await;
    b.click("section.requirement[data-name=\"openai\"] button[type=submit]")
        .await;
    b.client.enter_parent_frame().await.unwrap();
    b.wait_for_text(
        "#out",
        r#"{"status":"complete","user_id":"framed-shopper"}"#,
    )
    .await;
    assert!(!b.exists("iframe").await, "the modal closes on completion");
}
