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

use reqwest::{header, redirect, StatusCode};
use serde_json::{json, Value};

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
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            access_seconds: 3600,
            refresh_seconds: 86_400,
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
