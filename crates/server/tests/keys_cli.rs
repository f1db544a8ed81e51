//! `gatehouse keys rotate` and `gatehouse master-key rotate`, run as an
//! operator would, with the database checked afterwards; and
//! `gatehouse bench-seed`, which fills a database for the benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use aws_lc_rs::rsa::KeyPair;
use common::{Backend, PgDatabase};
use gatehouse::crypto::{master_key_id, Keyring, MasterKey};
use gatehouse_store::{on_pool, Store};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A fresh data directory (and database) and a way to run the binary
/// against it.
struct Deployment {
    dir: tempfile::TempDir,
    /// Set on PostgreSQL; SQLite lives in the data directory.
    postgres: Option<PgDatabase>,
}

impl Deployment {
    async fn new(backend: Backend) -> Self {
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres,
        }
    }

    fn database_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url.clone(),
            None => Store::sqlite_url(&self.data()),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn key_file(&self) -> PathBuf {
        self.data().join("master.key")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.data())
            .arg("--database-url")
            .arg(self.database_url())
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_MASTER_KEY")
            .env_remove("GATEHOUSE_MASTER_KEY_FILE")
            .env_remove("GATEHOUSE_CONFIG")
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs a command that must succeed; returns its stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert_success(args, &out);
        String::from_utf8(out.stdout).unwrap()
    }

    async fn store(&self) -> Store {
        Store::open(&self.database_url()).await.unwrap()
    }
}

fn assert_success(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "gatehouse {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stores a sealed connection config, as the connect routes do
/// (AAD = connection id); returns the connection id.
async fn add_connection(store: &Store, init: &serde_json::Value, keyring: &Keyring) -> String {
    let env = init["environments"]["live"].as_str().unwrap();
    let id = "conn_test".to_owned();
    let (key_id, sealed) = keyring
        .seal(br#"{"api_key":"sk-secret"}"#, id.as_bytes())
        .unwrap();
    on_pool!(store, |pool| {
        sqlx::query(
            "INSERT INTO apps (id, organization_id, project_id, environment_id, name, slug, hostname, access_type, created_at) \
             VALUES ('app_test', $1, $2, $3, 'Test', 'test', 'test.apps.localhost', 'private', 0)",
        )
        .bind(init["organization_id"].as_str().unwrap())
        .bind(init["project_id"].as_str().unwrap())
        .bind(env)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO connections (id, kind, environment_id, app_id, user_id, requirement_name, type, status, sealed_config, master_key_id, created_at, updated_at) \
             VALUES ($1, 'connection', $2, 'app_test', 'u1', 'openai', 'dynamiq.connections.OpenAI', 'active', $3, $4, 0, 0)",
        )
        .bind(&id)
        .bind(env)
        .bind(&sealed)
        .bind(&key_id)
        .execute(pool)
        .await
        .unwrap();
    });
    id
}

async fn connection_blob(store: &Store, id: &str) -> (String, Vec<u8>) {
    on_pool!(store, |pool| sqlx::query_as(
        "SELECT master_key_id, sealed_config FROM connections WHERE id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap())
}

fn file_mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0o600
    }
}

on_both_backends!(
    rotate_signing_keys_then_master_key,
    bench_seed_adds_working_keys
);

/// `bench-seed` adds the access keys it says (in several statements and
/// transactions' worth), writes each token once to a new owner-only file,
/// and every token names a stored, usable organization-wide key; it will
/// not overwrite an existing file.
async fn bench_seed_adds_working_keys(backend: Backend) {
    let d = Deployment::new(backend).await;
    let init: serde_json::Value =
        serde_json::from_str(&d.run(&["init", "--owner-email", "a@example.com", "--json"]))
            .unwrap();
    let out = d.dir.path().join("tokens.txt");
    let out_arg = out.to_str().unwrap();
    d.run(&[
        "bench-seed",
        "--access-keys",
        "1234",
        "--tokens-out",
        out_arg,
    ]);
    assert_eq!(file_mode(&out), 0o600);
    let text = std::fs::read_to_string(&out).unwrap();
    let tokens: Vec<&str> = text.lines().collect();
    assert_eq!(tokens.len(), 1234);
    let distinct: std::collections::HashSet<&str> = tokens.iter().copied().collect();
    assert_eq!(distinct.len(), tokens.len(), "every token is new");

    let store = d.store().await;
    let prefixes = gatehouse_core::TokenPrefixes::default();
    for raw in [tokens[0], tokens[617], tokens[1233]] {
        let parsed = gatehouse_core::token::parse(&prefixes, raw).expect("a valid access key");
        let record = store
            .credential_by_hash(parsed.hash.as_bytes())
            .await
            .unwrap()
            .expect("stored");
        let c = &record.credential;
        assert_eq!(c.organization_id, init["organization_id"].as_str().unwrap());
        assert!(c.project_id.is_none() && c.revoked_at.is_none() && c.expires_at.is_none());
    }
    let keys: i64 = on_pool!(store, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM credentials WHERE kind = 'access_key'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(keys, 1 + 1234, "the bootstrap key and the seeded ones");
    store.close().await;

    let again = d
        .command(&["bench-seed", "--access-keys", "1", "--tokens-out", out_arg])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}

/// `keys rotate` twice makes two new kids (the older ones retired, still
/// stored); `master-key rotate` then re-seals every private key and
/// connection under a new master key that replaces the key file, and the
/// old key opens nothing any more.
async fn rotate_signing_keys_then_master_key(backend: Backend) {
    let d = Deployment::new(backend).await;
    let init: serde_json::Value =
        serde_json::from_str(&d.run(&["init", "--owner-email", "a@example.com", "--json"]))
            .unwrap();

    let first = d.run(&["keys", "rotate"]).trim().to_owned();
    let second = d.run(&["keys", "rotate"]).trim().to_owned();
    assert!(!first.is_empty() && !first.contains(char::is_whitespace));
    assert_ne!(first, second);

    let old_keyring = Keyring::from_file(&d.key_file()).unwrap();
    let old_id = old_keyring.current_id().to_owned();
    let store = d.store().await;
    let conn_id = add_connection(&store, &init, &old_keyring).await;
    let before = store.signing_keys().await.unwrap();
    let active: Vec<_> = before.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kid, second);
    assert!(before
        .iter()
        .any(|k| k.kid == first && k.retired_at.is_some()));
    assert!(before.iter().all(|k| k.master_key_id == old_id));
    store.close().await;

    let out = d.run(&["master-key", "rotate"]);
    assert!(out.contains("master key rotated"), "{out}");
    assert!(!Path::new(&format!("{}.next", d.key_file().display())).exists());
    assert_eq!(file_mode(&d.key_file()), 0o600);

    let new_keyring = Keyring::from_file(&d.key_file()).unwrap();
    let new_id = new_keyring.current_id().to_owned();
    assert_ne!(new_id, old_id);
    assert!(out.contains(&new_id) && out.contains(&old_id), "{out}");

    let store = d.store().await;
    let after = store.signing_keys().await.unwrap();
    assert_eq!(after.len(), before.len());
    for key in &after {
        assert_eq!(key.master_key_id, new_id, "{}", key.kid);
        let pkcs8 = new_keyring
            .open(&key.master_key_id, &key.private_sealed, key.kid.as_bytes())
            .unwrap();
        KeyPair::from_pkcs8(&pkcs8).unwrap();
        assert!(old_keyring
            .open(&key.master_key_id, &key.private_sealed, key.kid.as_bytes())
            .is_err());
        let was = before.iter().find(|k| k.kid == key.kid).unwrap();
        assert_eq!(
            (&key.public_n, key.retired_at),
            (&was.public_n, was.retired_at)
        );
    }
    let (conn_key_id, sealed) = connection_blob(&store, &conn_id).await;
    assert_eq!(conn_key_id, new_id);
    let config = new_keyring
        .open(&conn_key_id, &sealed, conn_id.as_bytes())
        .unwrap();
    assert_eq!(&config[..], br#"{"api_key":"sk-secret"}"#);
    store.close().await;

    // The rotated deployment still rotates signing keys.
    let third = d.run(&["keys", "rotate"]).trim().to_owned();
    assert_ne!(third, second);
}

/// A rotation interrupted after writing `<master_key_file>.next` is
/// finished by running the command again, with that same new key; in the
/// meantime the keyring opens data under either key.
#[tokio::test]
async fn interrupted_master_key_rotation_resumes() {
    let d = Deployment::new(Backend::Sqlite).await;
    d.run(&["init", "--owner-email", "a@example.com", "--json"]);
    d.run(&["keys", "rotate"]);
    let old_id = Keyring::from_file(&d.key_file())
        .unwrap()
        .current_id()
        .to_owned();

    // As if a rotation had stopped right after writing the next key.
    let pending = MasterKey::generate();
    let next_path = format!("{}.next", d.key_file().display());
    std::fs::write(&next_path, hex::encode(pending.bytes())).unwrap();
    let pending_id = master_key_id(&pending);
    let both = Keyring::from_file(&d.key_file()).unwrap();
    assert!(both.holds(&old_id) && both.holds(&pending_id));
    // Signing keys still load and rotate meanwhile.
    d.run(&["keys", "rotate"]);

    let out = d.run(&["master-key", "rotate"]);
    assert!(out.contains("interrupted"), "{out}");
    assert!(!Path::new(&next_path).exists());
    let keyring = Keyring::from_file(&d.key_file()).unwrap();
    assert_eq!(keyring.current_id(), pending_id);
    let store = d.store().await;
    for key in store.signing_keys().await.unwrap() {
        assert_eq!(key.master_key_id, pending_id);
        keyring
            .open(&key.master_key_id, &key.private_sealed, key.kid.as_bytes())
            .unwrap();
    }
    store.close().await;
}

/// An inline master key cannot be rotated in place: the command says so
/// and changes nothing.
#[tokio::test]
async fn inline_master_key_is_refused() {
    let d = Deployment::new(Backend::Sqlite).await;
    let inline = "11".repeat(32);
    let out = d
        .command(&["master-key", "rotate"])
        .env("GATEHOUSE_MASTER_KEY", &inline)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("inline"), "{stderr}");
    assert!(stderr.contains("master_key_file"), "{stderr}");
    assert!(!d.key_file().exists());
}
