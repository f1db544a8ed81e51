//! `gatehouse serve` as a separate OS process (the built binary): started
//! on a fixed port over a data directory and database that outlive it,
//! waited for until `/readyz` answers, killed with SIGKILL, and started
//! again on the same data. For tests of what survives a crash.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// How to run `gatehouse serve`: the same on every (re)start.
#[derive(Debug, Clone)]
pub struct Serve {
    /// The working directory: `./data` and `./gatehouse.toml` live here
    /// unless `args` say otherwise. Each start appends its stderr to
    /// `serve.log` here.
    pub dir: PathBuf,
    pub database_url: String,
    pub port: u16,
    /// Extra flags after `serve --listen … --database-url …`.
    pub args: Vec<String>,
    /// Extra environment (`GATEHOUSE_…`).
    pub env: Vec<(String, String)>,
}

impl Serve {
    /// `serve` in `dir` over `database_url`, on a port free now.
    pub fn new(dir: &Path, database_url: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            database_url: database_url.to_string(),
            port: free_port(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts the process (without waiting for it to be ready).
    pub fn spawn(&self) -> ServerProcess {
        let listen = format!("127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--listen", &listen, "--database-url"])
            .arg(&self.database_url)
            .args(&self.args)
            .current_dir(&self.dir)
            .env("RUST_LOG", "info")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the whole of stdout, so the process never blocks on a full
        // pipe; passes the first-start banner's access key on.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.trim().strip_prefix("access key") {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        ServerProcess {
            child,
            spec: self.clone(),
            base: format!("http://{listen}"),
            key_banner: rx,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("serve.log")
    }
}

/// A running `gatehouse serve`; killed on drop.
pub struct ServerProcess {
    child: Child,
    spec: Serve,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The access key of a first-start banner, when there is one.
    pub key_banner: mpsc::Receiver<String>,
}

impl ServerProcess {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// Waits until `/readyz` answers 200 (the database is open and
    /// migrated); fails the test, with the server's log, if the process
    /// exits first or is not ready within `limit`.
    pub async fn wait_ready(&mut self, limit: Duration) {
        // This process may run no Gatehouse, which would choose the TLS
        // crypto reqwest needs.
        gatehouse::service::outbound::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "gatehouse serve exited with {status} before it was ready; its log:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                started.elapsed() < limit,
                "gatehouse serve not ready within {limit:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the server wrote to stderr, over every start in its dir.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.spec.log_path()).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush; waits until the process is gone.
    pub fn kill(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success());
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status of the graceful shutdown.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        self.child.wait().unwrap()
    }

    /// Starts the server again on the same data and port, after a
    /// [`kill`](Self::kill) (not waiting for it to be ready).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = self.spec.spawn();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
