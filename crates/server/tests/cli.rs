//! The binary as a new user runs it: `serve` with zero configuration, and
//! `init --json` (once; a second init refuses and changes nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// `init --json` prints the SPEC §10 object; a second init exits non-zero
/// and leaves the database as it was.
#[tokio::test]
async fn init_json_then_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        Command::new(BIN)
            .args([
                "init",
                "--owner-email",
                "Ada@Example.com",
                "--json",
                "--data-dir",
            ])
            .arg(&data)
            .env_remove("GATEHOUSE_DATABASE_URL")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(out["organization_id"].as_str().unwrap().starts_with("org_"));
    assert!(out["project_id"].as_str().unwrap().starts_with("prj_"));
    assert!(out["environments"]["sandbox"]
        .as_str()
        .unwrap()
        .starts_with("env_"));
    assert!(out["environments"]["live"]
        .as_str()
        .unwrap()
        .starts_with("env_"));
    assert_eq!(out["owner"]["email"], "ada@example.com");
    assert!(out["owner"]["id"].as_str().unwrap().starts_with("usr_"));
    assert!(out["owner"]["password"].as_str().unwrap().len() >= 20);
    assert!(out["owner"]["personal_access_token"]
        .as_str()
        .unwrap()
        .starts_with("dyn_pat_"));
    assert!(out["access_key"]["id"]
        .as_str()
        .unwrap()
        .starts_with("key_"));
    let key = out["access_key"]["token"].as_str().unwrap();
    assert!(gatehouse_core::token::parse(&Default::default(), key).is_ok());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the master key file is private");
    }

    let second = run();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already initialised"));
    assert!(second.stdout.is_empty());
    let store =
        gatehouse_store::Store::open(&format!("sqlite://{}", data.join("gatehouse.db").display()))
            .await
            .unwrap();
    assert_eq!(
        store.installation().await.unwrap().as_deref(),
        out["organization_id"].as_str()
    );
    let owner = store
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.id, out["owner"]["id"].as_str().unwrap());
    store.close().await;
}

/// `serve` with no configuration bootstraps, prints the first key once,
/// answers with it, and stops cleanly on SIGTERM.
#[tokio::test]
async fn serve_zero_config_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .env_remove("GATEHOUSE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut url) = (None, None);
    while key.is_none() || url.is_none() {
        let line = lines.next().expect("banner line").unwrap();
        if let Some(rest) = line.trim().strip_prefix("access key") {
            key = Some(rest.trim().to_string());
        }
        if let Some(at) = line.find("http://localhost:") {
            url = Some(line[at..].trim().to_string());
        }
    }
    let (key, url) = (key.unwrap(), url.unwrap());
    assert!(url.ends_with("/v1/tokens/me"));
    assert!(
        dir.path().join("data/gatehouse.db").exists(),
        "SQLite in ./data by default"
    );

    // This process runs no Gatehouse, which would choose the TLS crypto.
    gatehouse::service::oauth2::client::install_tls_provider();
    let client = reqwest::Client::new();
    let mut answered = None;
    for _ in 0..50 {
        if let Ok(r) = client.get(&url).bearer_auth(&key).send().await {
            answered = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = answered.expect("server answered");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["kind"], "access_key");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    // The banner is printed on first start only.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(!rest.iter().any(|l| l.contains(&key)));
}
