//! Test harness: a real Gatehouse on port 0 over a fresh database of the
//! chosen backend (a temporary SQLite file, or a PostgreSQL database
//! created for the test and dropped afterwards).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use gatehouse::{
    config::{Config, RawConfig},
    state::AppState,
    App,
};
use reqwest::{header::HeaderMap, Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(Backend)` once per backend, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Postgres).await } )*
        }
    };
}

/// The PostgreSQL server tests use; `GATEHOUSE_TEST_POSTGRES_URL` overrides.
pub fn postgres_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL database that exists for one test.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin = postgres_admin_url();
        let name = format!(
            "gatehouse_test_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL must be running on 127.0.0.1:5432 (see README)");
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped from a fresh thread and runtime: Drop cannot await, and
        // the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                    let _ = conn
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

/// Where a test's data lives; shared by several nodes in multi-node tests.
pub struct TestData {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub pg: Option<PgDatabase>,
}

impl TestData {
    pub async fn new(backend: Backend) -> Arc<Self> {
        let pg = match backend {
            Backend::Postgres => Some(PgDatabase::create().await),
            Backend::Sqlite => None,
        };
        Arc::new(Self {
            backend,
            dir: tempfile::tempdir().unwrap(),
            pg,
        })
    }

    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!(
                "sqlite://{}",
                self.dir.path().join("gatehouse.db").display()
            ),
        }
    }

    pub fn config(&self) -> Config {
        let raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(self.dir.path().display().to_string()),
            database_url: Some(self.database_url()),
            ..RawConfig::default()
        };
        raw.resolve().unwrap()
    }
}

/// The bootstrap secrets of a test server.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub organization_id: String,
    pub project_id: String,
    pub sandbox_id: String,
    pub live_id: String,
    pub owner_id: String,
    pub owner_email: String,
    pub password: String,
    pub pat: String,
    pub key: String,
    pub key_id: String,
}

/// The id of the environment called `name` in a project object (SPEC §4:
/// a project carries its `environments`).
pub fn environment_id(project: &Value, name: &str) -> String {
    project["environments"]
        .as_array()
        .expect("a project object")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} environment in {project}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub boot: Option<Bootstrap>,
    pub data: Arc<TestData>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A response: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The SPEC §2 error code, asserting the envelope's shape on the way.
    pub fn error_code(&self) -> &str {
        let err = &self.body["error"];
        assert!(err.is_object(), "not an error envelope: {}", self.text);
        assert!(
            err["message"].is_string(),
            "error without message: {}",
            self.text
        );
        err["code"].as_str().unwrap()
    }

    pub fn detail(&self, field: &str) -> Option<&str> {
        self.body["error"]["details"][field].as_str()
    }
}

impl TestServer {
    /// A server on a fresh database of `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(TestData::new(backend).await, |_| {}).await
    }

    /// A server on `data`, with `tweak` applied to its configuration.
    pub async fn start_with(data: Arc<TestData>, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(data, listener, tweak).await
    }

    /// A server on `data` serving `listener` (bound already, so its port can
    /// be given to something else first).
    pub async fn start_on(
        data: Arc<TestData>,
        listener: tokio::net::TcpListener,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = data.config();
        tweak(&mut config);
        let mut app = App::build_on(config, listener).await.expect("app builds");
        let boot = app.take_init_output().map(|o| Bootstrap {
            organization_id: o.organization_id.clone(),
            project_id: o.project_id.clone(),
            sandbox_id: o.sandbox_id.clone(),
            live_id: o.live_id.clone(),
            owner_id: o.owner_id.clone(),
            owner_email: o.owner_email.clone(),
            password: o.password.expose_secret().to_string(),
            pat: o.personal_access_token.expose_secret().to_string(),
            key: o.access_key.expose_secret().to_string(),
            key_id: o.access_key_id.clone(),
        });
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            state,
            boot,
            data,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn boot(&self) -> &Bootstrap {
        self.boot
            .as_ref()
            .expect("this server bootstrapped the database")
    }

    /// The bootstrap access key (organization-wide, every scope).
    pub fn key(&self) -> &str {
        &self.boot().key
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    /// Sends a request to `host` (an app hostname), resolved to this
    /// server, as a platform backend would.
    pub async fn call_host(
        &self,
        host: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let addr: std::net::SocketAddr = self.base.trim_start_matches("http://").parse().unwrap();
        let client = reqwest::Client::builder()
            .resolve(host, addr)
            .build()
            .unwrap();
        let mut req = client.request(method, format!("http://{host}:{}{path}", addr.port()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    /// Sends a raw request with custom headers and body bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates an access key with `body` using `token`, returning (id, token).
    pub async fn create_key(&self, token: &str, body: Value) -> (String, String) {
        let r = self.post("/v1/access-keys", token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["data"]["id"].as_str().unwrap().to_string(),
            r.body["data"]["token"].as_str().unwrap().to_string(),
        )
    }

    /// Adds a member with `role` and gives them a personal access token
    /// holding every scope their role allows, returning (user id, PAT).
    /// Members sign in through the dashboard; here the token is issued
    /// directly through the library, as the dashboard would.
    pub async fn member_with_pat(&self, email: &str, role: &str) -> (String, String) {
        let r = self
            .post(
                "/v1/organization/members",
                &self.boot().pat,
                serde_json::json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let user_id = r.body["data"]["id"].as_str().unwrap().to_string();
        let role = gatehouse_core::Role::parse(role).unwrap();
        let reach = gatehouse_core::Reach::organization(&self.boot().organization_id);
        let (row, token) = gatehouse::service::credentials::issue(
            self.state.prefixes(),
            gatehouse::service::credentials::CredentialSpec {
                kind: gatehouse_core::TokenKind::PersonalAccessToken,
                name: "test",
                reach: &reach,
                user_id: &user_id,
                via_key_id: None,
                scopes: role.scopes(),
                expires_at: None,
            },
        );
        self.state
            .store()
            .create_credential(&row, &gatehouse_store::effects::Effects::default())
            .await
            .unwrap();
        (user_id, token.token.expose_secret().to_string())
    }

    /// Creates an app `name` in `env_id` (`access`: `private` or `public`),
    /// adds a version with `requirements` and deploys it: (app id,
    /// hostname).
    pub async fn deploy_app(
        &self,
        env_id: &str,
        name: &str,
        access: &str,
        requirements: Value,
    ) -> (String, String) {
        let app = self
            .post(
                "/v1/apps",
                self.key(),
                serde_json::json!({"name": name, "environment_id": env_id, "access_type": access}),
            )
            .await;
        assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
        let id = app.body["data"]["id"].as_str().unwrap().to_string();
        let host = app.body["data"]["hostname"].as_str().unwrap().to_string();
        let ver = self
            .post(
                &format!("/v1/apps/{id}/versions"),
                self.key(),
                serde_json::json!({"requirements": requirements}),
            )
            .await;
        assert_eq!(ver.status, StatusCode::CREATED, "{}", ver.text);
        let ver_id = ver.body["data"]["id"].as_str().unwrap();
        let dep = self
            .post(
                &format!("/v1/apps/{id}/deployments"),
                self.key(),
                serde_json::json!({"version_id": ver_id}),
            )
            .await;
        assert_eq!(dep.status, StatusCode::CREATED, "{}", dep.text);
        assert_eq!(dep.body["data"]["deployed_version_id"], ver_id);
        (id, host)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Everything stored, as text: the SQLite files' bytes, or every row of
/// every PostgreSQL table. Call after the server stopped.
pub async fn dump_database(data: &TestData) -> String {
    match data.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(data.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("gatehouse.db")
                {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(all.len() > 4096, "the database file was read");
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            use sqlx::Row;
            let mut conn = PgConnection::connect(&data.database_url()).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(tables.contains(&"credentials".to_string()));
            let mut all = String::new();
            for t in tables {
                for row in sqlx::query(&format!("SELECT t::text AS r FROM \"{t}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                {
                    all.push_str(&row.get::<String, _>("r"));
                }
            }
            conn.close().await.unwrap();
            assert!(all.contains("key_"), "the rows were read");
            all
        }
    }
}

/// The rows of `sql` on the test's database, each column as text (`CAST(…
/// AS TEXT)` what is not text already); for checks straight on the
/// stored data while a server runs.
pub async fn query_text(data: &TestData, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    fn texts<R: Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
    where
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                    .collect()
            })
            .collect()
    }
    match data.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&data.database_url())
                .await
                .unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            texts(rows)
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&data.database_url()).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            texts(rows)
        }
    }
}
