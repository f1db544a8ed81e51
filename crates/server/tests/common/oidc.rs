//! A real OpenID provider for the OAuth2 tests: node's `oidc-provider`
//! (`tests/oidc-provider/` at the repository root, installed from its
//! committed lock file on first use), one process per test, on loopback.
//! [`Provider::sign_in`] drives its development sign-in and consent forms
//! over HTTP, as a user's browser would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use std::collections::HashMap;

use gatehouse::config::{OAuth2ProviderConfig, SettingsInput};
use gatehouse_core::oauth2::ProviderTarget;
use reqwest::{header, redirect, Method, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::common::{Backend, Reply, TestData, TestServer};

/// An OAuth2 connection type of the built-in catalog.
pub const GOOGLE: &str = "dynamiq.connections.GoogleOAuth2";

/// The provider's directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

/// Installs the provider's packages from the lock file, once per test
/// binary (`npm ci`), unless they are there already.
fn install() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done || dir().join("node_modules/oidc-provider").exists() {
        *done = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir())
        .status()
        .expect("the OAuth2 tests need node and npm (installed with Node.js)");
    assert!(status.success(), "npm ci in tests/oidc-provider failed");
    *done = true;
}

/// One registered OAuth2 client.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub id: &'static str,
    pub secret: &'static str,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth: &'static str,
}

pub const BASIC: ClientSpec = ClientSpec {
    id: "gatehouse-basic",
    secret: "basic-client-secret-7Hq2",
    auth: "client_secret_basic",
};

pub const POST: ClientSpec = ClientSpec {
    id: "gatehouse-post",
    secret: "post-client-secret-Zk81",
    auth: "client_secret_post",
};

/// Token lifetimes of a provider.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access_seconds: u64,
    pub refresh_seconds: u64,
    /// Of access tokens the refresh_token grant issues (default: the
    /// same as `access_seconds`).
    pub refreshed_access_seconds: Option<u64>,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_seconds: 3600,
            refresh_seconds: 86_400,
            refreshed_access_seconds: None,
        }
    }
}

/// A running provider; killed on drop.
pub struct Provider {
    pub issuer: String,
    child: Child,
    http: reqwest::Client,
}

impl Provider {
    /// Starts a provider with `clients`, redirecting to `redirect_uri`.
    pub fn start(clients: &[ClientSpec], redirect_uri: &str, lifetimes: Lifetimes) -> Self {
        install();
        gatehouse::service::oauth2::client::install_tls_provider();
        let clients: Vec<Value> = clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.id,
                    "client_secret": c.secret,
                    "token_endpoint_auth_method": c.auth,
                    "redirect_uris": [redirect_uri],
                })
            })
            .collect();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir())
            .env("CLIENTS", Value::Array(clients).to_string())
            .env("ACCESS_TOKEN_TTL", lifetimes.access_seconds.to_string())
            .env("REFRESH_TOKEN_TTL", lifetimes.refresh_seconds.to_string())
            .env(
                "REFRESHED_ACCESS_TOKEN_TTL",
                lifetimes
                    .refreshed_access_seconds
                    .unwrap_or(lifetimes.access_seconds)
                    .to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed for the OAuth2 tests");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the provider did not start: {line:?}"));
        Self {
            issuer: ready["issuer"].as_str().unwrap().to_string(),
            child,
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Stops the provider (it becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Token endpoint calls so far: (succeeded, failed).
    pub async fn token_calls(&self) -> (u64, u64) {
        let stats: Value = self
            .http
            .get(self.url("/test/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            stats["token_success"].as_u64().unwrap(),
            stats["token_error"].as_u64().unwrap(),
        )
    }

    /// Every token and code the provider issued.
    pub async fn issued_secrets(&self) -> Vec<String> {
        self.http
            .get(self.url("/test/secrets"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The userinfo endpoint's answer for an access token.
    pub async fn userinfo(&self, access_token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(self.url("/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Follows an authorize URL through sign-in (as `login`) and consent,
    /// and returns the URL the provider finally redirects to (the
    /// callback, with `code` and `state`), without opening it. With
    /// `deny`, cancels at consent instead.
    pub async fn sign_in(&self, authorize_url: &str, login: &str, deny: bool) -> String {
        // A fresh cookie jar per sign-in, like a new browser.
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut next = authorize_url.to_string();
        for _ in 0..12 {
            if !next.starts_with(&self.issuer) {
                return next;
            }
            let r = http.get(&next).send().await.unwrap();
            if r.status().is_redirection() {
                next = absolute(
                    &self.issuer,
                    r.headers()[header::LOCATION].to_str().unwrap(),
                );
                continue;
            }
            let page = r.text().await.unwrap();
            let action = form_action(&page).unwrap_or_else(|| panic!("no form on {next}: {page}"));
            let action = absolute(&self.issuer, &action);
            let form: Vec<(&str, &str)> = if page.contains(r#"value="login""#) {
                vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", "any-password"),
                ]
            } else if deny {
                next = format!("{action}/abort");
                continue;
            } else {
                vec![("prompt", "consent")]
            };
            let r = http.post(&action).form(&form).send().await.unwrap();
            assert!(
                r.status().is_redirection(),
                "form post answered {}",
                r.status()
            );
            next = absolute(
                &self.issuer,
                r.headers()[header::LOCATION].to_str().unwrap(),
            );
        }
        panic!("the provider never redirected back");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn absolute(issuer: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{issuer}{location}")
    }
}

fn form_action(page: &str) -> Option<String> {
    let at = page.find("action=\"")? + 8;
    Some(page[at..].split('"').next()?.replace("&amp;", "&"))
}

/// A Gatehouse whose port is known before it starts, a provider that
/// redirects to it, and (optionally) a file provider for `gmail`.
pub struct World {
    pub s: TestServer,
    pub idp: Provider,
}

pub async fn world(
    backend: Backend,
    lifetimes: Lifetimes,
    file_client: Option<ClientSpec>,
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

/// An app deployed with `requirements` in the sandbox: (app id, hostname).
pub async fn deployed_app(s: &TestServer, requirements: Value) -> (String, String) {
    s.deploy_app(&s.boot().sandbox_id, "Mail agent", "private", requirements)
        .await
}

pub fn mail_requirement() -> Value {
    json!([{"name": "mail", "type": "action_connector_account",
            "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}}])
}

pub fn google_requirement() -> Value {
    json!([{"name": "google", "type": "connection",
            "spec": {"type": "connection", "data": {"type": GOOGLE}}}])
}

pub async fn connect_token(s: &TestServer, host: &str, user: &str) -> String {
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
pub async fn requirements(s: &TestServer, ct: &str) -> Vec<Value> {
    let r = s.get("/v1/connect/requirements", ct).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

/// Starts a flow for the only requirement: the authorize URL.
pub async fn authorize(s: &TestServer, ct: &str, route: &str) -> (String, String) {
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
pub async fn open_callback(s: &TestServer, url: &str) -> Reply {
    let path = url
        .split_once("/v1/")
        .map(|(_, p)| format!("/v1/{p}"))
        .unwrap();
    s.call(Method::GET, &path, None, None).await
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The platform reveals the user's credentials.
pub async fn reveal(s: &TestServer, app: &str, user: &str) -> Vec<Value> {
    let r = s
        .get(
            &format!("/v1/apps/{app}/end-users/{user}/credentials"),
            s.key(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].as_array().unwrap().clone()
}

pub async fn status(s: &TestServer, host: &str, user: &str) -> String {
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

pub async fn end_user(s: &TestServer, user: &str) -> Value {
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
pub async fn connect_as(w: &World, ct: &str, route: &str, login: &str) -> Reply {
    let (_, url) = authorize(&w.s, ct, route).await;
    let back = w.idp.sign_in(&url, login, false).await;
    open_callback(&w.s, &back).await
}
