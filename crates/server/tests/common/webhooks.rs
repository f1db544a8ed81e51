//! A real webhook receiver for the tests: `tests/webhook-receiver/receiver.py`
//! at the repository root, which verifies every delivery's signature with
//! the `standardwebhooks` package from PyPI (the Standard Webhooks
//! reference library, pinned by hash), not with Gatehouse's code.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::{json, Value};

/// The receiver's directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/webhook-receiver")
}

/// Installs the pinned packages into `.packages/` unless they are there:
/// into a directory of this process first, then renamed into place, so
/// test processes running at once never see half an install.
fn install() -> PathBuf {
    let target = dir().join(".packages");
    if target.join("standardwebhooks").exists() {
        return target;
    }
    let staging = dir().join(format!(".packages-{}", std::process::id()));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
        ])
        .args([
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
            "--target",
        ])
        .arg(&staging)
        .current_dir(dir())
        .status()
        .expect("the webhook tests need python3 with pip");
    assert!(
        status.success(),
        "pip install of the webhook receiver failed"
    );
    if std::fs::rename(&staging, &target).is_err() {
        // Another test process installed it first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(target.join("standardwebhooks").exists());
    target
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub path: String,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// Whether `standardwebhooks` accepted the signature.
    pub verified: bool,
    pub error: Option<String>,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// A running receiver, stopped on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Starts a receiver on `port` (0: any free one).
    pub fn start_on(port: u16) -> Self {
        gatehouse::service::outbound::install_tls_provider();
        let packages = install();
        let mut child = Command::new("python3")
            .arg(dir().join("receiver.py"))
            .arg(port.to_string())
            .env("PYTHONPATH", packages)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the receiver");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the receiver says where it listens");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected receiver output {line:?}"));
        Self {
            child,
            port,
            http: reqwest::Client::new(),
        }
    }

    /// The URL deliveries should go to (`path` e.g. `/hooks/a`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The secrets signatures are checked against, and how many
    /// deliveries to answer 500 before answering 204.
    pub async fn set(&self, secrets: &[&str], fail: u32) {
        let r = self
            .http
            .post(self.url("/_control"))
            .json(&json!({"secrets": secrets, "fail": fail}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Every delivery so far.
    pub async fn received(&self) -> Vec<Received> {
        self.http
            .get(self.url("/_received"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (up to `limit`) until `done` holds for the deliveries so far;
    /// returns them.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received().await;
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < limit,
                "the receiver did not get what was expected within {limit:?}; it got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the receiver.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}
