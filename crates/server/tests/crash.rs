//! Crash safety, on SQLite and PostgreSQL: `gatehouse serve` runs as its own
//! process under a stream of writes from several concurrent clients
//! (access keys created in every reach, rotated with and without a grace
//! period and revoked; projects created, renamed, given environments and
//! deleted; webhooks created and deleted; connect tokens minted, end users
//! connecting and disconnecting) and is killed with SIGKILL at random
//! moments, then started again on the same data. After every restart:
//! - it starts cleanly (migrations applied once, `/readyz` answers);
//! - every acknowledged write is there and works (a created key
//!   authenticates, a rotated key's successor does and the old one follows
//!   its grace period, a revoked key is refused with `unauthorized`, a
//!   deleted project or webhook stays gone, a connection stays connected);
//! - every write in flight at the kill is wholly applied or not at all: the
//!   change, its audit event and its webhook outbox rows, or none of them
//!   (read back from the database and through `GET /v1/audit-events`);
//! - a write whose connection was refused is not applied;
//! - the stored data keeps its invariants (every credential has its
//!   creation event, every rotation its successor, every revocation its
//!   event and outbox rows, a deleted project takes its environments,
//!   webhooks and keys with it, every connection its event and outbox row).
//!
//! The random choices (what to write, when to kill) come from a seed printed
//! at the start; `GATEHOUSE_CRASH_SEED=<seed>` repeats them (the interleaving
//! of the concurrent clients and the kill still varies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/process.rs"]
mod process;

#[path = "crash/checks.rs"]
mod checks;
#[path = "crash/client.rs"]
mod client;
#[path = "crash/stored.rs"]
mod stored;
#[path = "crash/world.rs"]
mod world;

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering::SeqCst},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use checks::check;
use client::{Api, Outcome};
use common::{query_text, Backend, TestData};
use process::Serve;
use rand::{rngs::StdRng, Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use world::World;

on_both_backends!(acknowledged_writes_survive_sigkill);

/// Kills per backend.
const ROUNDS: u64 = 8;
/// Concurrent clients writing.
const WORKERS: u64 = 4;
/// How long a restarted server may take to answer `/readyz`.
const READY: Duration = Duration::from_secs(90);
const OPENAI: &str = "dynamiq.connections.OpenAI";
/// The grace period of a rotation that keeps the old key working: longer
/// than the test.
const GRACE: i64 = 3600;
const DAY_MS: i64 = 86_400_000;

fn seed() -> u64 {
    match std::env::var("GATEHOUSE_CRASH_SEED") {
        Ok(s) => s.parse().expect("GATEHOUSE_CRASH_SEED is a whole number"),
        Err(_) => rand::random(),
    }
}

/// A stream of writes against `gatehouse serve`, killed with SIGKILL
/// `ROUNDS` times at random moments; after each restart every acknowledged
/// write holds, every write in flight is all or nothing, and the stored
/// data keeps its invariants.
async fn acknowledged_writes_survive_sigkill(backend: Backend) {
    let started = Instant::now();
    let seed = seed();
    eprintln!("crash test on {backend:?}: seed {seed} (GATEHOUSE_CRASH_SEED={seed} repeats it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let data = TestData::new(backend).await;
    let boot = init(&data);
    // The stream is faster than a client would be; limits are not its
    // subject.
    std::fs::write(
        data.dir.path().join("gatehouse.toml"),
        "[rate_limits]\nenabled = false\n",
    )
    .unwrap();
    let spec = Serve::new(data.dir.path(), &data.database_url())
        .env("GATEHOUSE_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true")
        .env("GATEHOUSE_WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,1");
    let mut node = spec.spawn();
    node.wait_ready(READY).await;
    let app = setup(&Api::new(&node, &boot.key, None), &boot).await;
    let mut api = Api::new(&node, &boot.key, Some(&app.host));
    let world = Arc::new(Mutex::new(World::new(boot.clone(), app)));

    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..WORKERS {
            let rng = StdRng::seed_from_u64(seed ^ ((round + 1) << 32 | w));
            workers.spawn(work(api.clone(), world.clone(), stop.clone(), rng));
        }
        let delay = rng.random_range(200..1500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill();
        stop.store(true, SeqCst);
        while let Some(done) = workers.join_next().await {
            if let Err(problem) = done.unwrap() {
                panic!("seed {seed}, round {round}: {problem}");
            }
        }

        node.restart();
        node.wait_ready(READY).await;
        api = Api::new(&node, &boot.key, Some(&api.app_host()));
        let problems = check(&api, &data, &world).await;
        assert!(
            problems.is_empty(),
            "seed {seed}, after kill {} ({delay} ms into the stream):\n{}",
            round + 1,
            problems.join("\n")
        );
        let w = world.lock().unwrap();
        eprintln!(
            "kill {} at {delay} ms: {} writes acknowledged so far, {} in flight at kills ({} applied), {} refused connections",
            round + 1,
            w.acked,
            w.in_flight,
            w.in_flight_applied,
            w.not_sent
        );
    }
    let (acked, in_flight) = {
        let w = world.lock().unwrap();
        (w.acked, w.in_flight)
    };
    assert!(acked >= ROUNDS, "the stream wrote: {acked} acknowledged");
    assert!(
        in_flight >= 1,
        "some write was in flight at a kill (seed {seed})"
    );

    // Nothing stays stuck: every outbox event written before a kill is
    // fanned out by the restarted node.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = query_text(
            &data,
            "SELECT id FROM webhook_events WHERE fanned_out_at IS NULL",
        )
        .await;
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} outbox events never fanned out after the restart",
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !node.log().contains("panicked"),
        "the server panicked: {}",
        node.log()
    );
    let status = node.terminate();
    assert!(
        status.success(),
        "graceful shutdown after the kills: {status:?}"
    );
    if backend == Backend::Sqlite {
        let mode = query_text(&data, "PRAGMA journal_mode").await;
        assert_eq!(mode[0][0].as_deref(), Some("wal"));
    }
    eprintln!(
        "crash test on {backend:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Setup

/// What `gatehouse init --json` made.
#[derive(Debug, Clone)]
struct Boot {
    project_id: String,
    sandbox: String,
    live: String,
    key: String,
    key_id: String,
}

/// Bootstraps the database with `gatehouse init`, so every `serve` after
/// it is a restart.
fn init(data: &TestData) -> Boot {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["init", "--owner-email", "ops@example.com", "--json"])
        .arg("--database-url")
        .arg(data.database_url())
        .current_dir(data.dir.path())
        .env_remove("GATEHOUSE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_string();
    Boot {
        project_id: s(&v["project_id"]),
        sandbox: s(&v["environments"]["sandbox"]),
        live: s(&v["environments"]["live"]),
        key: s(&v["access_key"]["token"]),
        key_id: s(&v["access_key"]["id"]),
    }
}

/// The app end users connect to.
#[derive(Debug, Clone)]
struct App {
    id: String,
    host: String,
    requirement_id: String,
}

/// A private app in the sandbox needing one OpenAI connection, and a
/// webhook hearing every event there (at an address nothing listens on, so
/// deliveries fail and are retried: more writes while the server dies).
async fn setup(api: &Api, boot: &Boot) -> App {
    let app = api
        .expect(
            Method::POST,
            "/v1/apps",
            json!({"name": "Crash Agent", "environment_id": boot.sandbox, "access_type": "private"}),
        )
        .await;
    let id = app["data"]["id"].as_str().unwrap().to_string();
    let host = app["data"]["hostname"].as_str().unwrap().to_string();
    let version = api
        .expect(
            Method::POST,
            &format!("/v1/apps/{id}/versions"),
            json!({"requirements": [{"name": "openai", "type": "connection",
                   "spec": {"type": "connection", "data": {"type": OPENAI}}}]}),
        )
        .await;
    let requirement_id = version["data"]["requirements"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.expect(
        Method::POST,
        &format!("/v1/apps/{id}/deployments"),
        json!({"version_id": version["data"]["id"]}),
    )
    .await;
    api.expect(
        Method::POST,
        "/v1/webhooks",
        json!({"environment_id": boot.sandbox, "url": format!("{HOOKS}/all"),
               "events": EVENTS}),
    )
    .await;
    App {
        id,
        host,
        requirement_id,
    }
}

/// Where webhooks point: the discard port, where nothing listens here.
const HOOKS: &str = "http://127.0.0.1:9";

const EVENTS: [&str; 4] = [
    "access_key.revoked",
    "connection.created",
    "connection.deleted",
    "requirements.completed",
];

/// One client: writes until the server dies or the round ends.
async fn work(
    api: Api,
    world: Arc<Mutex<World>>,
    stop: Arc<AtomicBool>,
    mut rng: StdRng,
) -> Result<(), String> {
    while !stop.load(SeqCst) {
        let (op, call) = world.lock().unwrap().plan(&mut rng);
        let outcome = api.send(&call).await;
        let dead = matches!(outcome, Outcome::Unknown(_) | Outcome::NotSent);
        world.lock().unwrap().apply(op, outcome)?;
        if dead {
            break;
        }
    }
    Ok(())
}
