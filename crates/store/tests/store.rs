//! Store-level tests on both backends: unique violations come back as
//! conflicts naming the API field, a second bootstrap changes nothing,
//! environments' rate limits read back, the SQLite and PostgreSQL
//! migrations define the same schema, and SQLite runs with the
//! documented durability settings; concurrent mints commit together and
//! each once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use gatehouse_core::{AccessType, Role, TokenKind};
use gatehouse_store::{
    apps::App,
    audit::{AuditEvent, AuditFilter},
    credentials::Credential,
    effects::Effects,
    members::User,
    tenancy::{Bootstrap, Environment, Organization, Project},
    PageRequest, Store, StoreError,
};
use sqlx::{Connection, Executor, PgConnection};

fn postgres_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh store of one backend; a PostgreSQL database is dropped with it.
struct Fresh {
    store: Store,
    _dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl Fresh {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        Self {
            store: Store::open(&url).await.unwrap(),
            _dir: dir,
            pg_name: None,
        }
    }

    async fn postgres() -> Self {
        let admin = postgres_admin_url();
        let name = format!(
            "gatehouse_store_test_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL must be running on 127.0.0.1:5432 (see README)");
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        Self {
            store: Store::open(&format!("{base}/{name}")).await.unwrap(),
            _dir: tempfile::tempdir().unwrap(),
            pg_name: Some(name),
        }
    }

    async fn drop_database(self) {
        self.store.close().await;
        if let Some(name) = self.pg_name {
            let mut conn = PgConnection::connect(&postgres_admin_url()).await.unwrap();
            conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await
                .unwrap();
        }
    }
}

fn bootstrap() -> Bootstrap {
    let organization = Organization {
        id: "org_1".into(),
        name: "Org".into(),
        created_at: 1,
    };
    let project = Project {
        id: "prj_1".into(),
        organization_id: "org_1".into(),
        name: "Project".into(),
        created_at: 1,
        deleted_at: None,
    };
    let environments = ["sandbox", "live"]
        .iter()
        .map(|name| Environment {
            id: format!("env_{name}"),
            organization_id: "org_1".into(),
            project_id: "prj_1".into(),
            name: (*name).into(),
            created_at: 1,
            deleted_at: None,
            rate_limit: None,
            rate_limit_window: None,
        })
        .collect();
    Bootstrap {
        organization,
        project,
        environments,
        owner: user("usr_1", "owner@example.com"),
        credentials: Vec::new(),
        events: Vec::new(),
    }
}

fn user(id: &str, email: &str) -> User {
    User {
        id: id.into(),
        organization_id: "org_1".into(),
        email: email.into(),
        password_hash: "$argon2id$x".into(),
        role: Role::Developer,
        created_at: 1,
        deleted_at: None,
    }
}

fn app(id: &str, environment: &str, slug: &str, hostname: &str) -> App {
    App {
        id: id.into(),
        organization_id: "org_1".into(),
        project_id: "prj_1".into(),
        environment_id: environment.into(),
        name: "App".into(),
        slug: slug.into(),
        hostname: hostname.into(),
        access_type: AccessType::Public,
        deployed_version_id: None,
        allowed_redirect_origins: None,
        created_at: 1,
        deleted_at: None,
    }
}

fn conflict_field(result: Result<(), StoreError>) -> &'static str {
    match result {
        Err(StoreError::Conflict { field }) => field,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// Every unique index the API exposes comes back as a conflict naming its
/// field; a second bootstrap is refused and the typed columns read back.
async fn conflicts_name_the_field(f: Fresh) {
    let s = &f.store;
    let none = Effects::default();
    s.bootstrap(&bootstrap()).await.unwrap();
    assert!(matches!(
        s.bootstrap(&bootstrap()).await,
        Err(StoreError::AlreadyInitialised)
    ));

    s.create_app(
        &app("app_1", "env_sandbox", "acme", "acme.example.com"),
        &none,
    )
    .await
    .unwrap();
    let same_host = app("app_2", "env_live", "other", "acme.example.com");
    assert_eq!(
        conflict_field(s.create_app(&same_host, &none).await),
        "hostname"
    );
    let same_slug = app("app_3", "env_sandbox", "acme", "acme-2.example.com");
    assert_eq!(
        conflict_field(s.create_app(&same_slug, &none).await),
        "slug"
    );
    let elsewhere = app("app_4", "env_live", "acme", "acme-live.example.com");
    s.create_app(&elsewhere, &none).await.unwrap();
    let mut moved = elsewhere.clone();
    moved.hostname = "acme.example.com".into();
    assert_eq!(
        conflict_field(s.update_app(&moved, &none).await),
        "hostname"
    );
    let stored = s.app("app_4").await.unwrap().unwrap();
    assert_eq!(stored.hostname, "acme-live.example.com");
    assert_eq!(stored.access_type, AccessType::Public);

    s.create_user(&user("usr_2", "dev@example.com"), &none)
        .await
        .unwrap();
    let twin = user("usr_3", "dev@example.com");
    assert_eq!(conflict_field(s.create_user(&twin, &none).await), "email");
    let read = s.user("usr_2").await.unwrap().unwrap();
    assert_eq!(read.role, Role::Developer);

    let env = Environment {
        id: "env_x".into(),
        organization_id: "org_1".into(),
        project_id: "prj_1".into(),
        name: "sandbox".into(),
        created_at: 2,
        deleted_at: None,
        rate_limit: None,
        rate_limit_window: None,
    };
    assert_eq!(
        conflict_field(s.create_environment(&env, &none).await),
        "name"
    );
    f.drop_database().await;
}

/// The columns of every table: (table, column, nullable).
async fn schema(s: &Store) -> BTreeSet<(String, String, bool)> {
    match &s.pool {
        gatehouse_store::Backend::Sqlite(p) => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(p)
            .await
            .unwrap();
            let mut out = BTreeSet::new();
            for t in tables {
                let cols: Vec<(String, i64, i64)> =
                    sqlx::query_as("SELECT name, \"notnull\", pk FROM pragma_table_info($1)")
                        .bind(&t)
                        .fetch_all(p)
                        .await
                        .unwrap();
                for (name, not_null, pk) in cols {
                    out.insert((t.clone(), name, not_null == 0 && pk == 0));
                }
            }
            out
        }
        gatehouse_store::Backend::Postgres(p) => {
            let cols: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%'",
            )
            .fetch_all(p)
            .await
            .unwrap();
            cols.into_iter()
                .map(|(t, c, nullable)| (t, c, nullable == "YES"))
                .collect()
        }
    }
}

/// Both backends' migrations define the same tables, columns and
/// nullability.
#[tokio::test]
async fn migrations_define_the_same_schema() {
    let sqlite = Fresh::sqlite().await;
    let postgres = Fresh::postgres().await;
    let a = schema(&sqlite.store).await;
    let b = schema(&postgres.store).await;
    assert!(a.iter().any(|(t, _, _)| t == "credentials"), "{a:?}");
    let only_sqlite: Vec<_> = a.difference(&b).collect();
    let only_postgres: Vec<_> = b.difference(&a).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite: {only_sqlite:?}\nonly in PostgreSQL: {only_postgres:?}"
    );
    sqlite.drop_database().await;
    postgres.drop_database().await;
}

#[tokio::test]
async fn sqlite_conflicts_name_the_field() {
    conflicts_name_the_field(Fresh::sqlite().await).await;
}

#[tokio::test]
async fn postgres_conflicts_name_the_field() {
    conflicts_name_the_field(Fresh::postgres().await).await;
}

/// An environment's own rate limit is stored, read back (as 64-bit values
/// on both backends), listed among the overrides, and cleared.
async fn environment_rate_limits_round_trip(f: Fresh) {
    let s = &f.store;
    s.bootstrap(&bootstrap()).await.unwrap();
    s.set_environment_rate_limit("env_live", Some((250, 30)), &Effects::default())
        .await
        .unwrap();
    let env = s.environment("env_live").await.unwrap().unwrap();
    assert_eq!(
        (env.rate_limit, env.rate_limit_window),
        (Some(250), Some(30))
    );
    let sandbox = s.environment("env_sandbox").await.unwrap().unwrap();
    assert_eq!(sandbox.rate_limit, None);
    assert_eq!(
        s.environment_rate_limits().await.unwrap(),
        vec![("env_live".to_string(), 250, 30)]
    );
    s.set_environment_rate_limit("env_live", None, &Effects::default())
        .await
        .unwrap();
    let env = s.environment("env_live").await.unwrap().unwrap();
    assert_eq!((env.rate_limit, env.rate_limit_window), (None, None));
    assert!(s.environment_rate_limits().await.unwrap().is_empty());
    f.drop_database().await;
}

#[tokio::test]
async fn sqlite_environment_rate_limits_round_trip() {
    environment_rate_limits_round_trip(Fresh::sqlite().await).await;
}

#[tokio::test]
async fn postgres_environment_rate_limits_round_trip() {
    environment_rate_limits_round_trip(Fresh::postgres().await).await;
}

fn key(id: &str, hash: u8) -> Credential {
    Credential {
        id: id.into(),
        kind: TokenKind::AccessKey,
        name: "key".into(),
        organization_id: "org_1".into(),
        project_id: None,
        environment_id: None,
        user_id: "usr_1".into(),
        via_key_id: None,
        scopes: "keys:read".into(),
        token_hash: vec![hash; 32],
        checksum: "000000".into(),
        preview: "dyn_…".into(),
        created_at: 1,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

/// A rotation re-checks the old key inside its transaction: once the key
/// is revoked (or expired), rotating it writes nothing, so a rotation
/// racing a revocation cannot leave a working successor of a revoked key.
async fn rotation_of_a_revoked_key_writes_nothing(f: Fresh) {
    let s = &f.store;
    let none = Effects::default();
    s.bootstrap(&bootstrap()).await.unwrap();
    s.create_credential(&key("key_old", 1), &none)
        .await
        .unwrap();
    assert!(s
        .rotate_credential("key_old", 10, 20, &key("key_new", 2), &none)
        .await
        .unwrap());
    let old = s
        .credential(TokenKind::AccessKey, "key_old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.credential.expires_at, Some(20));

    s.create_credential(&key("key_a", 3), &none).await.unwrap();
    assert!(s.revoke_credential("key_a", 30, &none).await.unwrap());
    assert!(!s
        .rotate_credential("key_a", 40, 40, &key("key_b", 4), &none)
        .await
        .unwrap());
    assert!(s
        .credential(TokenKind::AccessKey, "key_b")
        .await
        .unwrap()
        .is_none());
    // Expired (key_old at 20) is refused the same way.
    assert!(!s
        .rotate_credential("key_old", 50, 50, &key("key_c", 5), &none)
        .await
        .unwrap());
    assert!(s
        .credential(TokenKind::AccessKey, "key_c")
        .await
        .unwrap()
        .is_none());
    f.drop_database().await;
}

#[tokio::test]
async fn sqlite_rotation_of_a_revoked_key_writes_nothing() {
    rotation_of_a_revoked_key_writes_nothing(Fresh::sqlite().await).await;
}

#[tokio::test]
async fn postgres_rotation_of_a_revoked_key_writes_nothing() {
    rotation_of_a_revoked_key_writes_nothing(Fresh::postgres().await).await;
}

/// Every pooled SQLite connection writes ahead (WAL) with `synchronous =
/// NORMAL` or stronger, as docs/decisions.md ("Durability") says: a commit
/// is in the WAL file before it returns (so a killed process loses no
/// acknowledged write; tests/crash.rs in the server proves that end to
/// end), and the WAL is synced at checkpoints (so an OS crash or power
/// loss cannot corrupt the file). Several connections are held at once so
/// the check is not of one connection only.
#[tokio::test]
async fn sqlite_durability_settings() {
    let f = Fresh::sqlite().await;
    let gatehouse_store::Backend::Sqlite(pool) = &f.store.pool else {
        unreachable!("a SQLite store")
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(sync >= 1, "synchronous = {sync}");
        held.push(conn);
    }
    drop(held);
    f.drop_database().await;
}

fn minted_event(id: &str, user: &str) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        organization_id: "org_1".into(),
        project_id: Some("prj_1".into()),
        environment_id: Some("env_sandbox".into()),
        actor_kind: "access_key".into(),
        actor_id: "key_1".into(),
        action: "connect_token.created".into(),
        target_type: "end_user".into(),
        target_id: user.into(),
        ip: None,
        user_agent: None,
        at: 5,
    }
}

/// Mints' end-user rows and audit events, written concurrently, are each
/// committed once (the writer commits the waiting ones together); one whose
/// event cannot be written (an id that already exists) fails alone.
async fn concurrent_mints_commit_each_once(f: Fresh) {
    let s = &f.store;
    s.bootstrap(&bootstrap()).await.unwrap();
    s.create_app(
        &app("app_1", "env_sandbox", "acme", "acme.example.com"),
        &Effects::default(),
    )
    .await
    .unwrap();
    const MINTS: usize = 64;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..MINTS {
        let store = s.clone();
        // 16 distinct users, each minted for four times; mint 63 reuses
        // the event id of mint 0.
        let user = format!("user-{}", i % 16);
        let event = if i == MINTS - 1 {
            "evt_0".to_string()
        } else {
            format!("evt_{i}")
        };
        set.spawn(async move {
            let effects = Effects::audit([minted_event(&event, &user)]);
            let result = store
                .touch_end_user("env_sandbox", &user, "app_1", 1_000 + i as i64, effects)
                .await;
            (i, result)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.unwrap();
        if result.is_err() {
            failed.push(i);
        }
    }
    // Whichever of the two with evt_0 came second failed, nothing else.
    assert_eq!(failed.len(), 1, "failed: {failed:?}");
    assert!(failed[0] == 0 || failed[0] == MINTS - 1);

    let users = s
        .list_end_users(
            "env_sandbox",
            Some("app_1"),
            PageRequest { page: 1, size: 100 },
        )
        .await
        .unwrap();
    assert_eq!(users.total, 16);
    let filter = AuditFilter {
        organization_id: "org_1".into(),
        action: Some("connect_token.created".into()),
        ..AuditFilter::default()
    };
    let (events, _) = s
        .list_events(&filter, PageRequest { page: 1, size: 200 }, None)
        .await
        .unwrap();
    assert_eq!(events.total, (MINTS - 1) as i64);
    let ids: BTreeSet<&str> = events.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), MINTS - 1, "each event once");

    // A later single mint goes through the same writer.
    s.touch_end_user(
        "env_sandbox",
        "user-new",
        "app_1",
        9_000,
        Effects::audit([minted_event("evt_new", "user-new")]),
    )
    .await
    .unwrap();
    let users = s
        .list_end_users("env_sandbox", None, PageRequest { page: 1, size: 100 })
        .await
        .unwrap();
    assert_eq!(users.total, 17);
    f.drop_database().await;
}

#[tokio::test]
async fn sqlite_concurrent_mints_commit_each_once() {
    concurrent_mints_commit_each_once(Fresh::sqlite().await).await;
}

#[tokio::test]
async fn postgres_concurrent_mints_commit_each_once() {
    concurrent_mints_commit_each_once(Fresh::postgres().await).await;
}
