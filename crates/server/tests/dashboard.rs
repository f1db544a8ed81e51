//! The developer dashboard (SPEC §7) in a real headless Chromium, and the
//! sign-in and session rules under it over plain HTTP: CSRF on every write
//! made with the cookie, the cookie's flags, and the per-IP sign-in limit.
//! SQLite is enough here: the API underneath is tested on both backends.
//!
//! `GATEHOUSE_SCREENSHOTS=<dir>` makes the token walkthrough save
//! `login.png`, `dashboard-desktop.png`, `dashboard-create.png` and
//! `dashboard-phone.png` there, the apps test `dashboard-apps.png`, the
//! audit test `dashboard-audit.png` and the webhooks test
//! `dashboard-webhooks.png`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/login.rs"]
mod login;
#[path = "common/webhooks.rs"]
mod receiver;

use std::{path::PathBuf, time::Duration};

use browser::{Browser, DESKTOP, PHONE};
use common::{Backend, TestData, TestServer};
use gatehouse::config::{OAuth2ProviderConfig, SettingsInput};
use gatehouse_core::oauth2::ProviderTarget;
use login::{form_body, login_form, no_redirects, post_login, set_cookie};
use receiver::Receiver;
use reqwest::{header, Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

const DEV_EMAIL: &str = "dev@example.com";
const DEV_PASSWORD: &str = "correct horse battery staple";
const GOOGLE: &str = "dynamiq.connections.GoogleOAuth2";

/// Where to save screenshots, when asked to.
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("GATEHOUSE_SCREENSHOTS").map(PathBuf::from)
}

async fn screenshot(b: &Browser, name: &str) {
    if let Some(dir) = screenshot_dir() {
        b.screenshot(&dir.join(name)).await;
    }
}

/// Signs in over HTTP: the session's `gh_session=…` and the whole header.
async fn http_sign_in(s: &TestServer, email: &str, password: &str) -> (String, String) {
    let http = no_redirects();
    let (cookie, csrf) = login_form(&http, &s.base).await;
    let r = post_login(
        &http,
        &s.base,
        &cookie,
        &[("email", email), ("password", password), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in redirects");
    assert_eq!(r.headers()[header::LOCATION], "/");
    set_cookie(r.headers(), "gh_session").expect("a session cookie")
}

/// Adds a developer who signs in with [`DEV_PASSWORD`].
async fn add_developer(s: &TestServer) {
    let r = s
        .post(
            "/v1/organization/members",
            &s.boot().pat,
            json!({"email": DEV_EMAIL, "role": "developer", "password": DEV_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Signs in through the browser form and waits for the dashboard.
async fn browser_sign_in(b: &Browser, s: &TestServer, email: &str, password: &str) {
    b.goto(&format!("{}/login", s.base)).await;
    b.wait_for("#email").await;
    b.fill("#email", email).await;
    b.fill("#password", password).await;
    b.click("main.login button[type=submit]").await;
    b.wait_for("body[data-page=dashboard]").await;
    b.wait_for("#tokens tbody tr").await;
}

/// Adds a viewer who signs in with [`DEV_PASSWORD`].
async fn add_viewer(s: &TestServer, email: &str) {
    let r = s
        .post(
            "/v1/organization/members",
            &s.boot().pat,
            json!({"email": email, "role": "viewer", "password": DEV_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// The attribute `attr` of every element `css` selects, in page order.
async fn attrs(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let found = b
        .client
        .execute(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute(arguments[1]) ?? '')",
            vec![json!(css), json!(attr)],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

/// The whole page as the browser has it now.
async fn page_source(b: &Browser) -> String {
    let live = b
        .client
        .execute("return document.documentElement.outerHTML", vec![])
        .await
        .unwrap();
    format!("{}\n{}", b.client.source().await.unwrap(), live)
}

/// Whether the `<dialog>` `css` is open.
async fn dialog_open(b: &Browser, css: &str) -> bool {
    b.attr(css, "open").await.is_some()
}

/// A developer signs in, creates an API token in the dashboard, copies it
/// from the one-time modal, uses it with the API, then revokes it with the
/// confirmation; the API refuses it from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_copy_use_and_revoke_a_token() {
    // Arrange: a developer, and two tokens made earlier by the owner.
    let s = TestServer::start(Backend::Sqlite).await;
    add_developer(&s).await;
    let sandbox = s.boot().sandbox_id.clone();
    s.create_key(
        s.key(),
        json!({"name": "Production backend", "environment_id": sandbox}),
    )
    .await;
    let (old_id, _) = s
        .create_key(
            s.key(),
            json!({"name": "Nightly export", "environment_id": sandbox, "scopes": ["audit:read", "apps:read"]}),
        )
        .await;
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{old_id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let b = Browser::start().await;
    b.goto(&format!("{}/login", s.base)).await;
    b.wait_for("#email").await;
    screenshot(&b, "login.png").await;

    // Act: sign in and open the create form.
    browser_sign_in(&b, &s, DEV_EMAIL, DEV_PASSWORD).await;
    assert_eq!(b.text("#user-email").await, DEV_EMAIL);
    assert_eq!(b.text("#user-role").await.to_lowercase(), "developer");
    b.wait_for_text("#tokens", "Production backend").await;
    assert!(b.text("#tokens").await.contains("never"));
    b.click("#create-token").await;
    b.wait_until("the create dialog", || {
        dialog_open(&b, "#create-token-dialog")
    })
    .await;
    let focused = b
        .client
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!("token-name"),
        "the dialog focuses its first field"
    );
    let checked = |scope: &'static str| {
        let b = &b;
        async move {
            b.find(&format!(
                "#create-token-form input[name=scope][value=\"{scope}\"]"
            ))
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref()
                == Some("true")
        }
    };
    assert!(checked("keys:read").await && checked("connect:write").await);
    assert!(!checked("connections:reveal").await, "reveal is opt-in");
    b.fill("#token-name", "CI deploy").await;
    screenshot(&b, "dashboard-create.png").await;
    b.click("#create-token-form button[type=submit]").await;

    // Assert: the token is shown once, copied, and works.
    b.wait_for("#new-token").await;
    assert!(b
        .text("#token-modal")
        .await
        .contains("This token will not be shown again."));
    b.click("#copy-token").await;
    b.wait_for_text("#copy-token", "Copied").await;
    let token = b
        .find("#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("the token");
    assert!(
        token.starts_with("dyn_") && !token.starts_with("dyn_pat_"),
        "{token}"
    );
    let me = s.get("/v1/tokens/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["data"]["name"], "CI deploy");
    assert_eq!(me.body["data"]["environment_id"], json!(sandbox));
    assert_eq!(me.body["data"]["created_by"]["email"], DEV_EMAIL);
    let id = me.body["data"]["id"].as_str().unwrap().to_string();
    b.click("#token-done").await;
    b.wait_until("the token to leave the page", || async {
        !b.exists("#new-token").await && !dialog_open(&b, "#token-modal").await
    })
    .await;
    let row = format!("#tokens tr[data-id=\"{id}\"]");
    b.wait_for_text(&row, "CI deploy").await;
    assert!(b.text(&row).await.contains("Active"));
    assert!(b
        .text(&format!("#tokens tr[data-id=\"{old_id}\"]"))
        .await
        .contains("Revoked"));
    screenshot(&b, "dashboard-desktop.png").await;

    // Act: revoke it, through the confirmation.
    b.click(&format!("{row} button.revoke")).await;
    b.wait_until("the revoke confirmation", || {
        dialog_open(&b, "#confirm-revoke")
    })
    .await;
    assert!(b.text("#confirm-revoke").await.contains("CI deploy"));
    b.click("#confirm-revoke-submit").await;

    // Assert: the row says so and the API refuses the token.
    b.wait_for_text(&row, "Revoked").await;
    assert!(!b.exists(&format!("{row} button.revoke")).await);
    let after = s.get("/v1/tokens/me", &token).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);

    // "All environments" lists organization-wide keys too, and the choice
    // (ids only) survives a reload.
    let boot_key = format!("#tokens tr[data-id=\"{}\"]", s.boot().key_id);
    assert!(!b.exists(&boot_key).await);
    b.find("#environment-switcher")
        .await
        .select_by_value("")
        .await
        .unwrap();
    b.wait_for_text(&boot_key, "Organization").await;
    assert!(!b.current_url().await.contains("dyn_"));
    b.client.refresh().await.unwrap();
    b.wait_for_text(&boot_key, "Organization").await;
    assert_eq!(
        b.find("#environment-switcher")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("")
    );

    b.set_size(PHONE).await;
    b.wait_for("#tokens tbody tr").await;
    screenshot(&b, "dashboard-phone.png").await;
    b.set_size(DESKTOP).await;
    b.close().await;
}

/// Personal access tokens: created in their tab, shown once (Esc closes
/// the modal and takes the token out of the page), act as the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_access_tokens_tab() {
    // Arrange
    let s = TestServer::start(Backend::Sqlite).await;
    let (email, password) = (s.boot().owner_email.clone(), s.boot().password.clone());
    let b = Browser::start().await;
    browser_sign_in(&b, &s, &email, &password).await;

    // Act
    b.click("#tab-pats").await;
    b.wait_for("#pats tbody tr").await;
    b.click("#create-pat").await;
    b.wait_until("the create dialog", || {
        dialog_open(&b, "#create-pat-dialog")
    })
    .await;
    b.click("#create-pat-form button[type=submit]").await;
    b.wait_for_text("#pat-name-error", "Cannot be blank").await;
    b.fill("#pat-name", "Laptop CLI").await;
    b.click("#create-pat-form button[type=submit]").await;
    let token = b
        .wait_for("#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("the token");
    b.find("#new-token")
        .await
        .send_keys(&fantoccini::key::Key::Escape.to_string())
        .await
        .unwrap();

    // Assert
    b.wait_until("the token to leave the page", || async {
        !b.exists("#new-token").await && !dialog_open(&b, "#token-modal").await
    })
    .await;
    let html = b
        .client
        .execute("return document.documentElement.outerHTML", vec![])
        .await
        .unwrap();
    assert!(!html.to_string().contains(&token));
    let me = s.get("/v1/tokens/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["data"]["kind"], "personal_access_token");
    assert_eq!(me.body["data"]["created_by"]["email"], json!(email));
    let id = me.body["data"]["id"].as_str().unwrap();
    b.wait_for_text(&format!("#pats tr[data-id=\"{id}\"]"), "Laptop CLI")
        .await;
    b.close().await;
}

/// Signed out, `/` sends the browser to /login; a wrong password and an
/// unknown email get the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_and_failed_sign_in() {
    // Arrange
    let s = TestServer::start(Backend::Sqlite).await;
    let owner = s.boot().owner_email.clone();

    // Act + Assert: the redirect, over HTTP…
    let r = no_redirects()
        .get(format!("{}/", s.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers()[header::LOCATION], "/login");

    // …and in the browser.
    let b = Browser::start().await;
    b.goto(&format!("{}/", s.base)).await;
    b.wait_until("the sign-in page", || async {
        b.current_url().await.ends_with("/login")
    })
    .await;
    for (email, password) in [
        (owner.as_str(), "not-the-password"),
        ("nobody@example.com", "not-the-password"),
    ] {
        b.wait_for("#email").await;
        b.fill("#email", email).await;
        b.fill("#password", password).await;
        // The answer is a new page: wait for it, not for the previous
        // attempt's error still on the old one.
        b.client
            .execute("window.beforeSubmit = true", vec![])
            .await
            .unwrap();
        b.click("main.login button[type=submit]").await;
        b.wait_until("the answer to the sign-in", || async {
            b.client
                .execute("return window.beforeSubmit === undefined", vec![])
                .await
                .is_ok_and(|fresh| fresh == Value::Bool(true))
        })
        .await;
        b.wait_for_text("#login-error", "Incorrect email or password.")
            .await;
        assert_eq!(b.text("#login-error").await, "Incorrect email or password.");
        assert!(b.current_url().await.ends_with("/login"));
    }
    b.close().await;
}

/// With a real session cookie, a write without `X-CSRF-Token` is refused
/// (403) and the same write with it succeeds (201); a sign-in form without
/// its CSRF field is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_with_the_cookie_need_the_csrf_token() {
    // Arrange
    let s = TestServer::start(Backend::Sqlite).await;
    let (boot_email, boot_password) = (s.boot().owner_email.clone(), s.boot().password.clone());
    let (session, _) = http_sign_in(&s, &boot_email, &boot_password).await;
    let http = no_redirects();
    let who = http
        .get(format!("{}/v1/session", s.base))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), StatusCode::OK);
    let who: Value = who.json().await.unwrap();
    let csrf = who["data"]["csrf_token"].as_str().unwrap().to_string();
    let page = http
        .get(format!("{}/", s.base))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!(r#"<meta name="csrf-token" content="{csrf}">"#)));
    let body =
        json!({"name": "from the cookie", "environment_id": s.boot().sandbox_id}).to_string();
    let create = |token: Option<&str>| {
        let mut req = http
            .post(format!("{}/v1/access-keys", s.base))
            .header(header::COOKIE, &session)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };

    // Act + Assert: no header, a wrong one, the right one.
    let missing = create(None).await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let missing: Value = missing.json().await.unwrap();
    assert_eq!(missing["error"]["code"], "forbidden");
    let wrong = create(Some("0123456789abcdef")).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let ok = create(Some(&csrf)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["data"]["created_by"]["email"], json!(boot_email));

    // A sign-in form without its CSRF field.
    let (cookie, _) = login_form(&http, &s.base).await;
    let r = post_login(
        &http,
        &s.base,
        &cookie,
        &[("email", &boot_email), ("password", &boot_password)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(r.headers(), "gh_session").is_none());
}

/// The session cookie is HttpOnly and SameSite=Lax (and not Secure over
/// plain http); signing out clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_flags() {
    // Arrange
    let s = TestServer::start(Backend::Sqlite).await;
    let (email, password) = (s.boot().owner_email.clone(), s.boot().password.clone());

    // Act
    let (session, header_value) = http_sign_in(&s, &email, &password).await;

    // Assert
    let flags: Vec<&str> = header_value.split(';').map(str::trim).collect();
    assert!(flags.contains(&"HttpOnly"), "{header_value}");
    assert!(flags.contains(&"SameSite=Lax"), "{header_value}");
    assert!(flags.contains(&"Path=/"), "{header_value}");
    assert!(!flags.contains(&"Secure"), "http only: {header_value}");
    let http = no_redirects();
    let csrf: Value = http
        .get(format!("{}/v1/session", s.base))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let out = http
        .post(format!("{}/logout", s.base))
        .header(header::COOKIE, &session)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&[(
            "csrf",
            csrf["data"]["csrf_token"].as_str().unwrap(),
        )]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()[header::LOCATION], "/login");
    let (cleared, _) = set_cookie(out.headers(), "gh_session").unwrap();
    assert_eq!(cleared, "gh_session=");
    let gone = http
        .get(format!("{}/", s.base))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.headers()[header::LOCATION],
        "/login",
        "the session ended"
    );
}

/// Sign-in is limited per IP: ten attempts in a minute are answered, the
/// eleventh gets 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited() {
    // Arrange
    let s = TestServer::start(Backend::Sqlite).await;
    let email = s.boot().owner_email.clone();
    let http = no_redirects();
    let (cookie, csrf) = login_form(&http, &s.base).await;
    let fields = [
        ("email", email.as_str()),
        ("password", "guess"),
        ("csrf", csrf.as_str()),
    ];
    let attempt = || post_login(&http, &s.base, &cookie, &fields);

    // Act + Assert
    for i in 1..=10 {
        let r = attempt().await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let limited = attempt().await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(limited
        .text()
        .await
        .unwrap()
        .contains("Too many sign-in attempts"));
}

/// The apps tab lists an app made with the API, shows its deployed
/// requirements, the OAuth2 providers of its environment (and which OAuth2
/// requirement has none), its end users' connection states (never a
/// secret), and erases an end user after confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_tab_shows_requirements_and_end_users() {
    // Arrange: a provider in gatehouse.toml for Google connections (none
    // for gmail), a deployed public app, and an end user (with a slash and
    // a space in their id) who connected OpenAI.
    let data = TestData::new(Backend::Sqlite).await;
    let s = TestServer::start_with(data, |c| {
        let settings = SettingsInput {
            preset: Some("google".into()),
            client_id: Some("google-client-1234.apps.example".into()),
            client_secret: Some(SecretString::from("google-secret-never-shown")),
            ..Default::default()
        }
        .check()
        .unwrap();
        c.oauth2_providers.insert(
            "company-google".into(),
            OAuth2ProviderConfig {
                target: ProviderTarget::ConnectionType(GOOGLE.into()),
                settings,
                environments: Vec::new(),
            },
        );
    })
    .await;
    let env = s.boot().sandbox_id.clone();
    let app = s
        .post(
            "/v1/apps",
            s.key(),
            json!({"name": "Support agent", "environment_id": env, "access_type": "public"}),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
    let app_id = app.body["data"]["id"].as_str().unwrap().to_string();
    let host = app.body["data"]["hostname"].as_str().unwrap().to_string();
    let ver = s
        .post(
            &format!("/v1/apps/{app_id}/versions"),
            s.key(),
            json!({"requirements": [
                {"name": "openai", "type": "connection", "title": "OpenAI",
                 "description": "Drafts replies.",
                 "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}},
                {"name": "mail", "type": "action_connector_account", "title": "Gmail",
                 "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}},
                {"name": "drive", "type": "connection", "title": "Google Drive",
                 "spec": {"type": "connection", "data": {"type": GOOGLE}}}
            ]}),
        )
        .await;
    assert_eq!(ver.status, StatusCode::CREATED, "{}", ver.text);
    let ver_id = ver.body["data"]["id"].as_str().unwrap().to_string();
    let dep = s
        .post(
            &format!("/v1/apps/{app_id}/deployments"),
            s.key(),
            json!({"version_id": ver_id}),
        )
        .await;
    assert_eq!(dep.status, StatusCode::CREATED, "{}", dep.text);
    let user = "acme/customer 42";
    let minted = s
        .call_host(
            &host,
            Method::POST,
            "/v1/connect/tokens",
            None,
            Some(json!({"user_id": user})),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
    let connect = minted.body["token"].as_str().unwrap().to_string();
    let reqs = s.get("/v1/connect/requirements", &connect).await;
    let openai_req = reqs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "openai")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = "sk-never-shown-4242";
    let cred = s
        .post(
            &format!("/v1/connect/requirements/{openai_req}/credentials"),
            &connect,
            json!({"type": "dynamiq.connections.OpenAI", "config": {"api_key": secret}}),
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
    let b = Browser::start().await;
    let (email, password) = (s.boot().owner_email.clone(), s.boot().password.clone());
    browser_sign_in(&b, &s, &email, &password).await;

    // Act: open the apps tab and the app.
    b.click("#tab-apps").await;
    let row = format!("#apps tr[data-id=\"{app_id}\"]");
    b.wait_for_text(&row, "Support agent").await;
    let text = b.text(&row).await;
    assert!(
        text.contains(&host) && text.contains("Public") && text.contains(&ver_id),
        "{text}"
    );
    b.click(&format!("{row} button")).await;

    // Assert: requirements of the deployed version, and the end user.
    b.wait_for_text("#requirements", "OpenAI").await;
    let reqs = b.text("#requirements").await;
    assert!(
        reqs.contains("dynamiq.connections.OpenAI") && reqs.contains("gmail"),
        "{reqs}"
    );
    // The environment's OAuth2 providers; the requirement none serves.
    let provider = "#oauth2-providers tbody tr[data-id]";
    b.wait_for_text(provider, "company-google").await;
    let row = b.text(provider).await;
    for part in [
        GOOGLE,
        "File",
        "google-client-1234.apps.example",
        &format!(
            "{}/v1/connect/oauth2/callback",
            s.base.replace("127.0.0.1", "localhost")
        ),
    ] {
        assert!(row.contains(part), "{part}: {row}");
    }
    assert_eq!(b.find_all(provider).await.len(), 1);
    let item = |name: &str| format!("#requirements li[data-name=\"{name}\"]");
    b.wait_for_text(&item("mail"), "No OAuth2 provider configured for gmail")
        .await;
    assert!(
        b.exists(&format!("{} [data-provider=missing]", item("mail")))
            .await
    );
    let drive = b.text(&item("drive")).await;
    assert!(
        drive.contains("OAuth2 provider: company-google") && !drive.contains("No OAuth2 provider"),
        "{drive}"
    );
    assert!(
        !b.exists(&format!("{} [data-provider]", item("openai")))
            .await
    );

    let user_row = "#end-users tbody tr[data-user-id]";
    b.wait_for_text(user_row, user).await;
    let states = b.text(user_row).await;
    assert!(
        states.contains("openai active") && states.contains("mail missing"),
        "{states}"
    );
    let page = b
        .client
        .execute("return document.documentElement.outerHTML", vec![])
        .await
        .unwrap();
    assert!(!page.to_string().contains(secret), "no secret in the page");
    assert!(
        !page.to_string().contains("google-secret-never-shown"),
        "no client secret in the page"
    );
    b.wait_for_text("#requirements", "Met for 1 of 1 end user")
        .await;
    b.client
        .execute(
            "document.getElementById('app-detail').scrollIntoView({block: 'end'})",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&b, "dashboard-apps.png").await;

    // Act: erase the end user, through the confirmation.
    b.click(&format!("{user_row} button.erase")).await;
    b.wait_until("the erase confirmation", || {
        dialog_open(&b, "#confirm-erase")
    })
    .await;
    assert!(b.text("#confirm-erase").await.contains(user));
    b.click("#confirm-erase-submit").await;

    // Assert
    b.wait_for_text("#end-users-status", "Erased").await;
    assert!(!b.exists(user_row).await);
    let gone = s
        .get(
            &format!("/v1/end-users/acme%2Fcustomer%2042?environment_id={env}"),
            s.key(),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
    b.close().await;
}

/// The audit tab lists the organization's events newest first, with their
/// actor, target and time; filtering by action shows only that action,
/// picking an actor in a row shows only that actor's events, and "Load
/// more" follows `next_cursor` to append the older events (filtered or
/// not). A viewer holds `audit:read` (SPEC §3) and gets the tab too; the
/// shell's unit test covers a session without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tab_lists_filters_and_pages() {
    // Arrange: 55 keys made by the bootstrap key (more than a page), one
    // by a developer's PAT, one revoked, and a viewer.
    let s = TestServer::start(Backend::Sqlite).await;
    let sandbox = s.boot().sandbox_id.clone();
    let mut made = Vec::new();
    for i in 0..55 {
        made.push(
            s.create_key(
                s.key(),
                json!({"name": format!("Batch {i}"), "environment_id": sandbox}),
            )
            .await
            .0,
        );
    }
    let (_, dev_pat) = s.member_with_pat("pat-dev@example.com", "developer").await;
    let dev_pat_id = s.get("/v1/tokens/me", &dev_pat).await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (dev_key, _) = s
        .create_key(
            &dev_pat,
            json!({"name": "Made by a PAT", "environment_id": sandbox}),
        )
        .await;
    let revoked = &made[3];
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{revoked}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let viewer = "auditor@example.com";
    add_viewer(&s, viewer).await;
    let b = Browser::start().await;
    browser_sign_in(&b, &s, viewer, DEV_PASSWORD).await;
    let api_ids = |query: &'static str| {
        let s = &s;
        async move {
            let r = s
                .get(&format!("/v1/audit-events?page_size=200{query}"), s.key())
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let all = api_ids("").await;
    assert!(all.len() > 60 && all.len() < 100, "{}", all.len());

    // Act: open the tab.
    b.click("#tab-audit").await;
    let rows = "#audit tbody tr[data-id]";
    b.wait_until("the first page", || async {
        b.find_all(rows).await.len() == 50
    })
    .await;

    // Assert: newest first, as the API has them; the latest events on top
    // (ids order events within a millisecond arbitrarily, so the three
    // made by quick API calls in a row are compared as a set).
    assert_eq!(attrs(&b, rows, "data-id").await, all[..50]);
    let actions = attrs(&b, rows, "data-action").await;
    assert_eq!(actions[0], "user.signed_in");
    let mut next = actions[1..4].to_vec();
    next.sort();
    assert_eq!(
        next,
        ["access_key.created", "access_key.revoked", "member.created"]
    );
    let times = attrs(&b, &format!("{rows} time"), "datetime").await;
    assert_eq!(times.len(), 50);
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let revoke_row = b
        .text(&format!("{rows}[data-action=\"access_key.revoked\"]"))
        .await;
    for part in [
        "Access key",
        s.boot().key_id.as_str(),
        revoked.as_str(),
        "127.0.0.1",
    ] {
        assert!(revoke_row.contains(part), "{part}: {revoke_row}");
    }
    assert!(b
        .attr(&format!("{rows} time"), "title")
        .await
        .is_some_and(|t| !t.is_empty()));
    assert!(b
        .text("#audit-status")
        .await
        .contains(&format!("50 of {}", all.len())));
    screenshot(&b, "dashboard-audit.png").await;

    // Act + Assert: "Load more" appends the rest, then goes away.
    b.click("#audit-more").await;
    b.wait_until("the second page", || async {
        b.find_all(rows).await.len() == all.len()
    })
    .await;
    assert_eq!(attrs(&b, rows, "data-id").await, all);
    b.wait_until("Load more to go", || async {
        b.attr("#audit-more", "hidden").await.is_some()
    })
    .await;

    // Act + Assert: one action.
    b.fill("#audit-action", "access_key.revoked").await;
    b.click("#audit-filters button[type=submit]").await;
    b.wait_for_text("#audit-status", "action access_key.revoked")
        .await;
    b.wait_until("only the revocation", || async {
        attrs(&b, rows, "data-action").await == ["access_key.revoked"]
    })
    .await;

    // An action with more than a page: "Load more" keeps the filter.
    b.fill("#audit-action", "access_key.created").await;
    b.click("#audit-filters button[type=submit]").await;
    let created = api_ids("&action=access_key.created").await;
    assert!(created.len() > 50, "{}", created.len());
    b.wait_until("a page of creations", || async {
        let actions = attrs(&b, rows, "data-action").await;
        actions.len() == 50 && actions.iter().all(|a| a == "access_key.created")
    })
    .await;
    b.click("#audit-more").await;
    b.wait_until("every creation", || async {
        attrs(&b, rows, "data-id").await == created
    })
    .await;

    // Act + Assert: pick the PAT's row's actor: only its events.
    b.click(&format!(
        "{rows}[data-actor-id=\"{dev_pat_id}\"] button.actor"
    ))
    .await;
    b.wait_for_text("#audit-status", &format!("by {dev_pat_id}"))
        .await;
    b.wait_until("only the PAT's events", || async {
        attrs(&b, rows, "data-actor-id").await == [dev_pat_id.clone()]
    })
    .await;
    assert!(b.text(rows).await.contains(&dev_key));
    assert!(b.text(rows).await.contains("Personal access token"));
    assert_eq!(
        b.find("#audit-actor")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(dev_pat_id.as_str())
    );

    // Clearing lists everything again; a filter nothing matches says so.
    b.click("#audit-clear").await;
    b.wait_until("every event again", || async {
        b.find_all(rows).await.len() == 50
    })
    .await;
    b.fill("#audit-actor", "key_nobody").await;
    b.click("#audit-filters button[type=submit]").await;
    b.wait_for_text("#audit tbody tr.empty", "No events match these filters.")
        .await;
    assert!(b.attr("#audit-more", "hidden").await.is_some());
    b.close().await;
}

/// The webhooks tab lists a webhook made with the API and its deliveries
/// (the real receiver checks every signature): a key's revocation is
/// delivered (204, attempt 1), "Retry" makes attempt 2, the toggle
/// disables and enables the webhook, and a webhook created in the
/// dashboard shows its signing secret once. No secret is ever in the page
/// afterwards, and a viewer sees the list without the write controls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_tab_shows_deliveries_and_retries() {
    // Arrange: a webhook for key revocations, and one revocation.
    let data = TestData::new(Backend::Sqlite).await;
    let s = TestServer::start_with(data, |c| {
        c.allow_private_webhook_targets = true;
        c.webhook_retry_schedule_seconds = vec![1, 1];
    })
    .await;
    let rx = Receiver::start();
    let sandbox = s.boot().sandbox_id.clone();
    let hook = s
        .post(
            "/v1/webhooks",
            s.key(),
            json!({"environment_id": sandbox, "url": rx.url("/hooks/dashboard"),
                   "events": ["access_key.revoked"], "description": "Key revocations"}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
    let hook_id = hook.body["data"]["id"].as_str().unwrap().to_string();
    let secret = hook.body["data"]["secret"].as_str().unwrap().to_string();
    rx.set(&[&secret], 0).await;
    let (key_id, _) = s
        .create_key(
            s.key(),
            json!({"name": "Short-lived", "environment_id": sandbox}),
        )
        .await;
    assert_eq!(
        s.delete(&format!("/v1/access-keys/{key_id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let got = rx
        .wait_until(Duration::from_secs(20), |got| !got.is_empty())
        .await;
    assert!(got[0].verified, "{:?}", got[0].error);
    let event_id = got[0].webhook_id.clone().unwrap();
    // A second webhook that Gatehouse disabled after 3 days of failures.
    let down = s
        .post(
            "/v1/webhooks",
            s.key(),
            json!({"environment_id": sandbox, "url": rx.url("/hooks/down"), "events": ["connection.created"]}),
        )
        .await;
    assert_eq!(down.status, StatusCode::CREATED, "{}", down.text);
    let down_id = down.body["data"]["id"].as_str().unwrap().to_string();
    let reason = "every delivery failed from 2030-01-01T00:00:00Z to 2030-01-04T00:00:00Z";
    gatehouse_store::on_pool!(s.state.store(), |p| {
        sqlx::query("UPDATE webhooks SET enabled = FALSE, disabled_reason = $1 WHERE id = $2")
            .bind(reason)
            .bind(&down_id)
            .execute(p)
            .await
            .unwrap();
    });
    add_developer(&s).await;
    let b = Browser::start().await;
    browser_sign_in(&b, &s, DEV_EMAIL, DEV_PASSWORD).await;

    // Act: open the tab and the webhook.
    b.click("#tab-webhooks").await;
    let row = format!("#webhooks tr[data-id=\"{hook_id}\"]");
    b.wait_for_text(&row, "/hooks/dashboard").await;
    let text = b.text(&row).await;
    for part in [
        "sandbox",
        "access_key.revoked",
        "Enabled",
        "Key revocations",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let down_row = format!("#webhooks tr[data-id=\"{down_id}\"]");
    let text = b.text(&down_row).await;
    assert!(text.contains("Disabled") && text.contains(reason), "{text}");
    b.click(&format!("{row} button.url")).await;

    // Assert: the delivery, as the receiver saw it.
    let deliveries = "#deliveries tbody tr[data-id]";
    b.wait_for_text(deliveries, "access_key.revoked").await;
    assert_eq!(b.find_all(deliveries).await.len(), 1);
    let first = format!("{deliveries}[data-event-id=\"{event_id}\"]");
    assert_eq!(b.text(&format!("{first} .status-code")).await, "204");
    assert_eq!(b.text(&format!("{first} .attempt")).await, "1");
    assert!(b.text(&first).await.contains(" ms"));
    assert!(b
        .text("#webhook-detail-url")
        .await
        .contains("/hooks/dashboard"));
    assert!(b.current_url().await.contains(&hook_id));

    // Act + Assert: retry; attempt 2 of the same event appears.
    b.click(&format!("{first} button.retry")).await;
    b.wait_until("attempt 2", || async {
        attrs(&b, &format!("{deliveries} .attempt"), "class")
            .await
            .len()
            == 2
    })
    .await;
    b.wait_for_text("#deliveries-status", "Attempt 2").await;
    let newest = b.text(deliveries).await;
    assert!(
        newest.contains(&event_id) && newest.contains("204"),
        "{newest}"
    );
    assert_eq!(b.text(&format!("{deliveries} .attempt")).await, "2");
    let got = rx
        .wait_until(Duration::from_secs(20), |got| got.len() == 2)
        .await;
    assert_eq!(got[1].webhook_id.as_deref(), Some(event_id.as_str()));
    assert!(got[1].verified);
    b.client
        .execute(
            "document.getElementById('webhook-detail').scrollIntoView({block: 'end'})",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&b, "dashboard-webhooks.png").await;

    // Act + Assert: disable, then enable again.
    b.click(&format!("{row} button.toggle")).await;
    b.wait_for_text(&row, "Disabled").await;
    let shown = s.get(&format!("/v1/webhooks/{hook_id}"), s.key()).await;
    assert_eq!(shown.body["data"]["enabled"], false);
    let focused = b
        .client
        .execute(
            "return document.activeElement.closest('tr')?.dataset.id + ' ' + document.activeElement.textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!(format!("{hook_id} Enable")),
        "focus stays on the toggle"
    );
    b.wait_until("retry to be off", || async {
        b.find(&format!("{first} button.retry"))
            .await
            .is_enabled()
            .await
            .is_ok_and(|on| !on)
    })
    .await;
    b.click(&format!("{row} button.toggle")).await;
    b.wait_for_text(&row, "Enabled").await;
    let shown = s.get(&format!("/v1/webhooks/{hook_id}"), s.key()).await;
    assert_eq!(shown.body["data"]["enabled"], true);
    // Enabling the one Gatehouse disabled clears its reason.
    b.click(&format!("{down_row} button.toggle")).await;
    b.wait_for_text(&down_row, "Enabled").await;
    assert!(!b.text(&down_row).await.contains(reason));

    // Act: create a webhook in the dashboard.
    b.click("#create-webhook").await;
    b.wait_until("the create dialog", || {
        dialog_open(&b, "#create-webhook-dialog")
    })
    .await;
    b.fill("#webhook-url", &rx.url("/hooks/created")).await;
    b.click("#create-webhook-form button[type=submit]").await;
    b.wait_for_text("#webhook-events-error", "Choose at least one event")
        .await;
    b.click("#create-webhook-form input[value=\"connection.created\"]")
        .await;
    b.click("#create-webhook-form button[type=submit]").await;

    // Assert: its secret once, then never again.
    let new_secret = b
        .wait_for("#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("the secret");
    assert!(new_secret.starts_with("whsec_"), "{new_secret}");
    assert!(b
        .text("#token-modal")
        .await
        .contains("This secret will not be shown again."));
    b.click("#token-done").await;
    b.wait_until("the secret to leave the page", || async {
        !b.exists("#new-token").await && !dialog_open(&b, "#token-modal").await
    })
    .await;
    let listed = s.get("/v1/webhooks", s.key()).await;
    let created = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["url"] == json!(rx.url("/hooks/created")))
        .expect("the new webhook")["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.wait_for_text(
        &format!("#webhooks tr[data-id=\"{created}\"]"),
        "connection.created",
    )
    .await;
    b.wait_for_text("#webhook-detail-url", "/hooks/created")
        .await;
    b.wait_for_text("#deliveries tbody tr.empty", "No deliveries yet")
        .await;
    let page = page_source(&b).await;
    assert!(!page.contains(&secret), "no signing secret in the page");
    assert!(!page.contains(&new_secret), "no signing secret in the page");
    assert!(!page.contains("whsec_"), "no signing secret in the page");

    // A viewer: the list and the deliveries, no write controls.
    let viewer = "hooks-viewer@example.com";
    add_viewer(&s, viewer).await;
    b.client.delete_all_cookies().await.unwrap();
    browser_sign_in(&b, &s, viewer, DEV_PASSWORD).await;
    b.click("#tab-webhooks").await;
    b.wait_for_text(&row, "/hooks/dashboard").await;
    assert!(!b.exists("#create-webhook").await);
    assert!(!b.exists(&format!("{row} button.toggle")).await);
    b.click(&format!("{row} button.url")).await;
    b.wait_until("both attempts", || async {
        b.find_all(deliveries).await.len() == 2
    })
    .await;
    assert!(!b.exists("#deliveries button.retry").await);
    b.close().await;
}
