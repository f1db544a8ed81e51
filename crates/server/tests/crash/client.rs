//! The clients' HTTP: one request and what became of it (answered,
//! refused, no answer, or never sent because the connection was refused).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::process::ServerProcess;

/// A client of one server process (a new one after each restart, so no
/// pooled connection to the dead process is reused).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub port: u16,
    pub key: String,
    pub app_host: Option<String>,
    pub client: reqwest::Client,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    /// Sent to the app's hostname (the app surface).
    pub on_app: bool,
    pub token: String,
    pub body: Option<Value>,
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx, with its body.
    Done(Value),
    /// Any other status.
    Refused(StatusCode, String),
    /// No answer: sent, or partly sent, when the server died.
    Unknown(String),
    /// The connection was refused: the server never saw it.
    NotSent,
}

impl Api {
    pub fn new(node: &ServerProcess, key: &str, app_host: Option<&str>) -> Self {
        gatehouse::service::outbound::install_tls_provider();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(host) = app_host {
            client = client.resolve(host, node.addr());
        }
        Self {
            base: node.base.clone(),
            port: node.addr().port(),
            key: key.to_string(),
            app_host: app_host.map(str::to_string),
            client: client.build().unwrap(),
        }
    }

    pub fn app_host(&self) -> String {
        self.app_host.clone().unwrap()
    }

    pub async fn send(&self, call: &Call) -> Outcome {
        let url = if call.on_app {
            format!("http://{}:{}{}", self.app_host(), self.port, call.path)
        } else {
            format!("{}{}", self.base, call.path)
        };
        let mut req = self
            .client
            .request(call.method.clone(), url)
            .bearer_auth(&call.token);
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        match req.send().await {
            Err(e) if e.is_connect() => Outcome::NotSent,
            Err(e) => Outcome::Unknown(e.to_string()),
            Ok(resp) => {
                let status = resp.status();
                match resp.text().await {
                    Err(e) => Outcome::Unknown(e.to_string()),
                    Ok(text) if status.is_success() => {
                        Outcome::Done(serde_json::from_str(&text).unwrap_or(Value::Null))
                    }
                    Ok(text) => Outcome::Refused(status, text),
                }
            }
        }
    }

    /// A management request with the bootstrap key that must succeed.
    pub async fn expect(&self, method: Method, path: &str, body: Value) -> Value {
        let call = Call {
            method,
            path: path.to_string(),
            on_app: false,
            token: self.key.clone(),
            body: Some(body),
        };
        match self.send(&call).await {
            Outcome::Done(v) => v,
            Outcome::Unknown(e) => panic!("{path}: no answer: {e}"),
            other => panic!("{path}: {other:?}"),
        }
    }

    /// A `GET` to the running server: (status, body).
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}
