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

use common::Backend;
use gatehouse_store::on_pool;
use oidc::{
    authorize, connect_as, connect_token, deployed_app, end_user, google_requirement,
    mail_requirement, open_callback, query_of, requirements, reveal, status, world, Lifetimes,
    World, BASIC, GOOGLE, POST,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    action_connector_account_from_the_file,
    oauth2_connection_from_the_api,
    state_is_single_use_and_checked,
    denied_consent_and_reconnect,
    refresh_on_reveal_single_flight,
    fresh_tokens_cost_no_provider_call,
    background_refresh,
    refused_refresh_expires_the_connection,
    unreachable_provider_is_not_expiry,
    provider_api_rules,
);

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

/// Sets every pending flow's expiry in the past, as ten minutes would.
async fn expire_pending_flows(w: &World) {
    on_pool!(w.s.state.store(), |p| {
        sqlx::query("UPDATE oauth2_flows SET expires_at = 1 WHERE consumed_at IS NULL")
            .execute(p)
            .await
            .unwrap();
    });
}

/// The callback refuses a missing, forged, replayed or expired state and a
/// foreign issuer, each with its message, and none of them changes what
/// is connected.
async fn state_is_single_use_and_checked(backend: Backend) {
    let w = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let s = &w.s;
    let (_, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;

    let none = s
        .call(
            Method::GET,
            "/v1/connect/oauth2/callback?code=abc",
            None,
            None,
        )
        .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.text.contains("missing its state"), "{}", none.text);
    let forged = s
        .call(
            Method::GET,
            "/v1/connect/oauth2/callback?code=abc&state=forged-state-value",
            None,
            None,
        )
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(forged.text.contains("not known"), "{}", forged.text);
    assert!(forged.text.contains("data-status=\"error\""));
    // The result page: the hosted page's strict CSP, no inline script.
    let csp = forged.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(forged
        .text
        .contains("<script type=\"module\" src=\"/assets/oauth2-callback.js\"></script>"));
    assert_eq!(forged.text.matches("<script").count(), 1);

    // Used once: the second identical callback is refused.
    let (_, url) = authorize(s, &ct, "action-connector").await;
    let back = w.idp.sign_in(&url, "ada@example.com", false).await;
    assert_eq!(open_callback(s, &back).await.status, StatusCode::OK);
    let again = open_callback(s, &back).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.text.contains("already used"), "{}", again.text);
    assert_eq!(
        end_user(s, "ada").await["accounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A state older than ten minutes.
    let (_, url) = authorize(s, &ct, "action-connector").await;
    expire_pending_flows(&w).await;
    let back = w.idp.sign_in(&url, "eve@example.com", false).await;
    let expired = open_callback(s, &back).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(expired.text.contains("expired"), "{}", expired.text);

    // RFC 9207: an answer naming another issuer is refused.
    let (_, url) = authorize(s, &ct, "action-connector").await;
    let back = w.idp.sign_in(&url, "eve@example.com", false).await;
    let issuer = query_of(&back)["iss"].clone();
    assert_eq!(issuer, w.idp.issuer);
    let mixed = back.replace(
        &format!(
            "iss={}",
            form_urlencoded::byte_serialize(issuer.as_bytes()).collect::<String>()
        ),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(mixed, back);
    let refused = open_callback(s, &mixed).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.text.contains("expected provider"),
        "{}",
        refused.text
    );

    let accounts = end_user(s, "ada").await["accounts"].clone();
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["label"], "ada@example.com");
}

/// Denied consent changes nothing; connecting again replaces the account,
/// never adds a second one.
async fn denied_consent_and_reconnect(backend: Backend) {
    let w = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let s = &w.s;
    let (app, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );

    let (req, url) = authorize(s, &ct, "action-connector").await;
    let back = w.idp.sign_in(&url, "ada@example.com", true).await;
    assert_eq!(query_of(&back)["error"], "access_denied");
    let denied = open_callback(s, &back).await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST);
    assert!(
        denied.text.contains("data-status=\"denied\""),
        "{}",
        denied.text
    );
    assert!(denied
        .text
        .contains(&format!("data-requirement-id=\"{req}\"")));
    assert!(denied.text.contains("did not grant access"));
    let now = requirements(s, &ct).await;
    assert_eq!(now[0]["status"], "completed");
    assert_eq!(now[0]["account"]["label"], "ada@example.com");

    let page = connect_as(&w, &ct, "action-connector", "ada.work@example.com").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let accounts = end_user(s, "ada").await["accounts"].clone();
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(accounts[0]["label"], "ada.work@example.com");
    let revealed = reveal(s, &app, "ada").await;
    assert_eq!(revealed.len(), 1);
    let (_, me) = w
        .idp
        .userinfo(revealed[0]["config"]["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me["email"], "ada.work@example.com");
}

/// A token expiring within a minute is refreshed before it is revealed,
/// once for any number of simultaneous reveals (a rotated refresh token
/// spent twice would be refused), and the new token works. The provider
/// gives refreshed tokens an hour, so a reveal that arrives after the
/// refresh finished has nothing to refresh (a 45-second token would be
/// due again at once).
async fn refresh_on_reveal_single_flight(backend: Backend) {
    let lifetimes = Lifetimes {
        access_seconds: 45,
        refresh_seconds: 86_400,
        refreshed_access_seconds: Some(3600),
    };
    let w = world(backend, lifetimes, Some(BASIC)).await;
    let s = &w.s;
    let (app, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    // The background refresher may already have renewed the token (it
    // renews what expires within 5 minutes, every 15 s): count from here;
    // a token it renewed lasts an hour and needs no refresh to reveal.
    let (before, failed) = w.idp.token_calls().await;
    assert_eq!(failed, 0);
    assert!(before >= 1, "the code was exchanged");
    let due = u64::from(before == 1);

    let (a, b, c, d) = tokio::join!(
        reveal(s, &app, "ada"),
        reveal(s, &app, "ada"),
        reveal(s, &app, "ada"),
        reveal(s, &app, "ada")
    );
    let reveals = [a, b, c, d];
    let tokens: Vec<&str> = reveals
        .iter()
        .map(|r| r[0]["config"]["access_token"].as_str().unwrap())
        .collect();
    assert!(tokens.windows(2).all(|t| t[0] == t[1]), "{tokens:?}");
    assert_eq!(
        w.idp.token_calls().await,
        (before + due, 0),
        "exactly one refresh for four concurrent reveals"
    );
    let (code, _) = w.idp.userinfo(tokens[0]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(end_user(s, "ada").await["accounts"][0]["status"], "active");
}

/// Revealing a token that is not about to expire calls the provider
/// zero times, however often it is revealed.
async fn fresh_tokens_cost_no_provider_call(backend: Backend) {
    let w = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let s = &w.s;
    let (app, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    let before = w.idp.token_calls().await;
    let first = reveal(s, &app, "ada").await;
    for _ in 0..5 {
        assert_eq!(
            reveal(s, &app, "ada").await[0]["config"],
            first[0]["config"]
        );
    }
    assert_eq!(
        w.idp.token_calls().await,
        before,
        "no provider call per fresh reveal"
    );
}

/// The background refresher renews a token before anyone asks for it:
/// five minutes ahead of expiry, or halfway through a shorter life, and
/// then not again until the new token's turn.
async fn background_refresh(backend: Backend) {
    use gatehouse::service::oauth2::tokens::refresh_due;
    let lifetimes = Lifetimes {
        access_seconds: 4,
        refresh_seconds: 86_400,
        refreshed_access_seconds: None,
    };
    let w = world(backend, lifetimes, Some(BASIC)).await;
    let s = &w.s;
    let (_, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    let page = connect_as(&w, &ct, "action-connector", "ada@example.com").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        refresh_due(s.state.services()).await.unwrap(),
        0,
        "not due yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_300)).await;

    assert_eq!(refresh_due(s.state.services()).await.unwrap(), 1);
    assert_eq!(
        w.idp.token_calls().await,
        (2, 0),
        "one code exchange, one refresh"
    );
    assert_eq!(refresh_due(s.state.services()).await.unwrap(), 0, "renewed");
    let account = end_user(s, "ada").await["accounts"][0].clone();
    assert_eq!(account["status"], "active");
    assert!(account["last_error"].is_null(), "{account}");
}

/// A refresh token the provider refuses (invalid_grant) expires the
/// connection: nothing is revealed, the user is incomplete again, and the
/// hosted page sees it expired.
async fn refused_refresh_expires_the_connection(backend: Backend) {
    let lifetimes = Lifetimes {
        access_seconds: 2,
        refresh_seconds: 3,
        refreshed_access_seconds: None,
    };
    let w = world(backend, lifetimes, Some(BASIC)).await;
    let s = &w.s;
    let (app, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(status(s, &host, "ada").await, "complete");
    tokio::time::sleep(std::time::Duration::from_millis(4_000)).await;

    let revealed = reveal(s, &app, "ada").await;
    assert!(revealed.is_empty(), "{revealed:?}");
    assert_eq!(w.idp.token_calls().await.1, 1, "the refresh was refused");
    let account = end_user(s, "ada").await["accounts"][0].clone();
    assert_eq!(account["status"], "expired");
    assert!(
        account["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{account}"
    );
    assert_eq!(status(s, &host, "ada").await, "incomplete");
    let now = requirements(s, &ct).await;
    assert_eq!(now[0]["status"], "pending");
    assert_eq!(now[0]["connection_status"], "expired");
    let events = s
        .get("/v1/audit-events?action=connection.expired", s.key())
        .await;
    assert_eq!(
        events.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        events.text
    );

    // Connecting again makes it active.
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(status(s, &host, "ada").await, "complete");
}

/// A provider that cannot be reached is retried later: the connection
/// stays active, a still-valid token is revealed without it, an expired
/// one is left out, and nothing answers 5xx.
async fn unreachable_provider_is_not_expiry(backend: Backend) {
    let lifetimes = Lifetimes {
        access_seconds: 2,
        refresh_seconds: 86_400,
        refreshed_access_seconds: None,
    };
    let mut w = world(backend, lifetimes, Some(BASIC)).await;
    let (app, host) = deployed_app(&w.s, mail_requirement()).await;
    let ct = connect_token(&w.s, &host, "ada").await;
    assert_eq!(
        connect_as(&w, &ct, "action-connector", "ada@example.com")
            .await
            .status,
        StatusCode::OK
    );
    w.idp.stop();
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let s = &w.s;
    let revealed = reveal(s, &app, "ada").await;
    assert!(
        revealed.is_empty(),
        "an expired token is left out: {revealed:?}"
    );
    let account = end_user(s, "ada").await["accounts"][0].clone();
    assert_eq!(account["status"], "active", "{account}");
    assert!(
        account["last_error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{account}"
    );
    assert_eq!(requirements(s, &ct).await[0]["status"], "completed");

    let mut fresh = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let (app, host) = deployed_app(&fresh.s, mail_requirement()).await;
    let ct = connect_token(&fresh.s, &host, "bob").await;
    assert_eq!(
        connect_as(&fresh, &ct, "action-connector", "bob")
            .await
            .status,
        StatusCode::OK
    );
    fresh.idp.stop();
    let revealed = reveal(&fresh.s, &app, "bob").await;
    assert_eq!(revealed.len(), 1, "a valid token needs no provider");
}

/// The provider API: presets fill endpoints, bad values name their field,
/// one provider per target and environment, file providers are listed
/// read-only, the API's wins over the file's, scopes are those of `apps`,
/// and the client secret is never returned.
async fn provider_api_rules(backend: Backend) {
    let w = world(backend, Lifetimes::default(), Some(BASIC)).await;
    let s = &w.s;
    let env = s.boot().sandbox_id.clone();
    let create = |body: serde_json::Value| s.post("/v1/oauth2-providers", s.key(), body);

    let github = create(
        json!({"name": "GitHub", "environment_id": env, "app_slug": "github",
        "preset": "github", "client_id": "gh-id", "client_secret": "gh-secret-value-1"}),
    )
    .await;
    assert_eq!(github.status, StatusCode::CREATED, "{}", github.text);
    assert_eq!(
        github.body["data"]["authorize_url"],
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        github.body["data"]["token_url"],
        "https://github.com/login/oauth/access_token"
    );
    assert!(!github.text.contains("gh-secret-value-1"));
    let id = github.body["data"]["id"].as_str().unwrap().to_string();

    for (body, field) in [
        (
            json!({"name": "x", "environment_id": env, "app_slug": "x1", "preset": "myspace", "client_id": "i", "client_secret": "s"}),
            "preset",
        ),
        (
            json!({"name": "x", "environment_id": env, "app_slug": "x2", "authorize_url": "https://a.example/auth",
                "token_url": "http://a.example/token", "client_id": "i", "client_secret": "s"}),
            "token_url",
        ),
        (
            json!({"name": "x", "environment_id": env, "app_slug": "x3", "preset": "google", "client_id": "i"}),
            "client_secret",
        ),
        (
            json!({"name": "x", "environment_id": env, "connection_type": "dynamiq.connections.OpenAI", "preset": "google",
                "client_id": "i", "client_secret": "s"}),
            "connection_type",
        ),
        (
            json!({"name": "x", "environment_id": env, "preset": "google", "client_id": "i", "client_secret": "s"}),
            "connection_type",
        ),
    ] {
        let r = create(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.detail(field).is_some(), "{field}: {}", r.text);
    }
    let twin = create(
        json!({"name": "GitHub 2", "environment_id": env, "app_slug": "github",
        "preset": "github", "client_id": "i", "client_secret": "s"}),
    )
    .await;
    assert_eq!(twin.status, StatusCode::CONFLICT, "{}", twin.text);
    assert!(twin.detail("app_slug").is_some(), "{}", twin.text);

    let renamed = s
        .patch(
            &format!("/v1/oauth2-providers/{id}"),
            s.key(),
            json!({"name": "GitHub (prod)", "client_secret": "gh-secret-value-2"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["data"]["name"], "GitHub (prod)");
    assert!(!renamed.text.contains("gh-secret-value"));

    let list = s
        .get(
            &format!("/v1/oauth2-providers?environment_id={env}"),
            s.key(),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.body["data"].as_array().unwrap();
    assert_eq!(list.body["pagination"]["total_count"], 2);
    let file = items.iter().find(|p| p["source"] == "file").unwrap();
    assert_eq!(file["app_slug"], "gmail");
    assert!(!list.text.contains(BASIC.secret) && !list.text.contains("gh-secret-value"));
    let file_id = file["id"].as_str().unwrap();
    let change = s
        .patch(
            &format!("/v1/oauth2-providers/{file_id}"),
            s.key(),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(change.status, StatusCode::BAD_REQUEST, "{}", change.text);

    // The API's provider for gmail wins over the file's.
    let api_gmail = create(json!({"name": "Mail", "environment_id": env, "app_slug": "gmail",
        "authorize_url": format!("{}/auth", w.idp.issuer), "token_url": format!("{}/token", w.idp.issuer),
        "client_id": POST.id, "client_secret": POST.secret, "client_auth": "client_secret_post", "scopes": ["openid", "email"]})).await;
    assert_eq!(api_gmail.status, StatusCode::CREATED, "{}", api_gmail.text);
    let (_, host) = deployed_app(s, mail_requirement()).await;
    let ct = connect_token(s, &host, "ada").await;
    let (_, url) = authorize(s, &ct, "action-connector").await;
    assert_eq!(query_of(&url)["client_id"], POST.id);
    let page = connect_as(&w, &ct, "action-connector", "ada").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);

    // Resource `apps`: read needs apps:read, write apps:write.
    let (_, reader) = s
        .create_key(s.key(), json!({"name": "r", "scopes": ["apps:read"]}))
        .await;
    assert_eq!(
        s.get("/v1/oauth2-providers", &reader).await.status,
        StatusCode::OK
    );
    let denied = s
        .post("/v1/oauth2-providers", &reader, json!({"name": "n"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    assert_eq!(
        s.delete(&format!("/v1/oauth2-providers/{id}"), s.key())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v1/oauth2-providers/{id}"), s.key())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A requirement without a provider in the environment says so.
    let no_provider = create(json!({"name": "n"})).await;
    assert_eq!(no_provider.status, StatusCode::BAD_REQUEST);
}
