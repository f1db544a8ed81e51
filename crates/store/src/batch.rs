//! Group commit of minted connect tokens' writes.
//!
//! Every mint records its end user (once per app) and an audit event. One
//! transaction each would make concurrent mints queue for SQLite's single
//! writer and pay a commit apiece; instead one writer task takes whatever
//! mints are waiting, writes them all in one transaction with multi-row
//! inserts, and answers each caller once it is committed. A mint still
//! returns only after its rows are durable. Idle, a group is one mint,
//! committed at once; when mints arrive back to back (the previous commit
//! ended under [`LINGER`] ago), a group gathers for up to [`LINGER`] before
//! it commits, since on a busy worker the mints being signed cannot queue
//! while the writer is reading the queue. Should the batch fail, each of its mints is written alone so that
//! one bad row fails only its own request.

use std::{sync::OnceLock, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    audit::AuditEvent,
    connect::insert_end_user,
    effects::{insert_outbox, write_effects, Effects},
    error::{Result, StoreError},
    on_pool, Backend, Store,
};

/// At most this many mints per transaction: 12 parameters an audit event
/// keeps a statement far below either backend's parameter limit.
const MAX_BATCH: usize = 256;
/// Mints waiting for the writer beyond this wait to be queued.
const QUEUE: usize = 4 * MAX_BATCH;

/// One mint's writes.
pub(crate) struct Touch {
    pub environment_id: String,
    pub user_id: String,
    pub app_id: String,
    pub at: i64,
    pub effects: Effects,
}

struct Job {
    touch: Touch,
    done: oneshot::Sender<Result<()>>,
}

/// Under load (the previous commit ended less than this ago), how long
/// the writer lets a group gather after its first mint before committing.
/// An idle server commits each mint at once.
const LINGER: Duration = Duration::from_millis(2);

/// The queue to the writer task, started on first use (on the runtime of
/// that first caller). The task holds only the pool, so it ends when the
/// last clone of the store drops the sender.
#[derive(Default)]
pub(crate) struct Batcher {
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl Store {
    /// Records that `user_id` is an end user of the app (from `at`, Unix
    /// ms, if new) together with `effects`, committed with other mints
    /// waiting at the same time.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn touch_end_user(
        &self,
        environment_id: &str,
        user_id: &str,
        app_id: &str,
        at: i64,
        effects: Effects,
    ) -> Result<()> {
        let touch = Touch {
            environment_id: environment_id.to_owned(),
            user_id: user_id.to_owned(),
            app_id: app_id.to_owned(),
            at,
            effects,
        };
        let queue = self.batcher.queue.get_or_init(|| spawn_writer(&self.pool));
        let (done, answer) = oneshot::channel();
        match queue.send(Job { touch, done }).await {
            Ok(()) => match answer.await {
                Ok(result) => result,
                // The writer went away with the job (its runtime shut
                // down): whether it committed is unknown, and writing it
                // again could record the audit event twice.
                Err(_) => Err(StoreError::Database(sqlx::Error::PoolClosed)),
            },
            // The writer's runtime is gone: write it here.
            Err(mpsc::error::SendError(job)) => write_one(&self.pool, &job.touch).await,
        }
    }
}

fn spawn_writer(pool: &Backend) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(writer(pool.clone(), rx));
    tx
}

async fn writer(pool: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut last_commit: Option<Instant> = None;
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Mints arriving back to back: let the ones being signed now join
        // this transaction rather than each need one of their own.
        if last_commit.is_some_and(|at| at.elapsed() < LINGER) {
            let deadline = Instant::now() + LINGER;
            while jobs.len() < MAX_BATCH {
                let room = MAX_BATCH - jobs.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut jobs, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        tracing::debug!(mints = jobs.len(), "committing mints");
        if jobs.len() > 1 {
            let touches: Vec<&Touch> = jobs.iter().map(|j| &j.touch).collect();
            if write_many(&pool, &touches).await.is_ok() {
                for job in jobs.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
                last_commit = Some(Instant::now());
                continue;
            }
        }
        for job in jobs.drain(..) {
            let result = write_one(&pool, &job.touch).await;
            let _ = job.done.send(result);
        }
        last_commit = Some(Instant::now());
    }
}

async fn write_one(pool: &Backend, t: &Touch) -> Result<()> {
    let store = Pool { pool };
    on_pool!(store, |p| {
        let mut tx = p.begin().await?;
        insert_end_user!(&t.environment_id, &t.user_id, &t.app_id, t.at)
            .execute(&mut *tx)
            .await?;
        write_effects!(tx, &t.effects);
        tx.commit().await?;
    });
    Ok(())
}

async fn write_many(pool: &Backend, touches: &[&Touch]) -> Result<()> {
    let events: Vec<&AuditEvent> = touches.iter().flat_map(|t| &t.effects.events).collect();
    let store = Pool { pool };
    on_pool!(store, |p| {
        let mut tx = p.begin().await?;
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO end_users (environment_id, user_id, app_id, created_at) ",
        );
        q.push_values(touches, |mut row, t| {
            row.push_bind(&t.environment_id)
                .push_bind(&t.user_id)
                .push_bind(&t.app_id)
                .push_bind(t.at);
        });
        q.push(" ON CONFLICT (environment_id, user_id, app_id) DO NOTHING");
        q.build().execute(&mut *tx).await?;
        if !events.is_empty() {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO audit_events (id, organization_id, project_id, environment_id, actor_kind, actor_id, action, target_type, target_id, ip, user_agent, at) ",
            );
            q.push_values(&events, |mut row, e| {
                row.push_bind(&e.id)
                    .push_bind(&e.organization_id)
                    .push_bind(&e.project_id)
                    .push_bind(&e.environment_id)
                    .push_bind(&e.actor_kind)
                    .push_bind(&e.actor_id)
                    .push_bind(&e.action)
                    .push_bind(&e.target_type)
                    .push_bind(&e.target_id)
                    .push_bind(&e.ip)
                    .push_bind(&e.user_agent)
                    .push_bind(e.at);
            });
            q.build().execute(&mut *tx).await?;
        }
        for o in touches.iter().flat_map(|t| &t.effects.outbox) {
            insert_outbox!(o).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Lets [`on_pool!`] match on a bare pool.
struct Pool<'a> {
    pool: &'a Backend,
}
