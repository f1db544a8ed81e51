//! The checks after a restart: the writes in flight at the kill resolved
//! against the database (all or nothing), and every acknowledged write
//! probed through the API.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use gatehouse_core::time::now_ms;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    client::Api,
    common::TestData,
    stored::{invariants, EnvironmentRow, ProjectRow, Snapshot, WebhookRow},
    world::{Hook, Key, KeyState, Op, Project, World},
    DAY_MS,
};

/// Everything that must hold after a restart; the problems found.
pub async fn check(api: &Api, data: &TestData, world: &Mutex<World>) -> Vec<String> {
    let mut problems = Vec::new();
    let snap = Snapshot::load(data).await;
    let expected_migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/migrations/sqlite"
    ))
    .unwrap()
    .count();
    if snap.migrations.len() != expected_migrations
        || snap
            .migrations
            .iter()
            .any(|s| !matches!(s.as_deref(), Some("1" | "true")))
    {
        problems.push(format!(
            "migrations after the restart: {:?}",
            snap.migrations
        ));
    }
    let boot = world.lock().unwrap().boot.clone();
    invariants(&snap, &boot, &mut problems);
    let audits = resolve(&mut world.lock().unwrap(), &snap, &mut problems);
    for (target, action, want) in audits {
        let (status, body) = api
            .get(
                &format!("/v1/audit-events?target_id={target}&action={action}&page_size=200"),
                &api.key,
            )
            .await;
        let got = body["data"].as_array().map_or(0, Vec::len);
        if status != StatusCode::OK || got != want {
            problems.push(format!(
                "GET /v1/audit-events for {action} of {target}: {status}, {got} events, expected {want}"
            ));
        }
    }
    let probes = probes(&world.lock().unwrap(), &snap, &mut problems);
    problems.extend(run_probes(api, probes).await);
    problems
}

/// Learns from the database what became of each write without an answer
/// (all or nothing, and nothing for a write never sent); returns the audit
/// events the API must then show: (target, action, how many).
fn resolve(
    w: &mut World,
    s: &Snapshot,
    problems: &mut Vec<String>,
) -> Vec<(String, &'static str, usize)> {
    let now = now_ms();
    let mut audits = Vec::new();
    for p in std::mem::take(&mut w.pending) {
        let applied = match &p.op {
            Op::CreateKey {
                name,
                project,
                expiring,
            } => {
                if let Some(project) = project {
                    w.projects.get_mut(project).unwrap().busy = false;
                }
                let rows = s.named(name);
                if let [row] = rows.as_slice() {
                    audits.push((row.id.clone(), "access_key.created", 1));
                    w.keys.insert(
                        row.id.clone(),
                        Key {
                            name: name.clone(),
                            token: None,
                            project: project.clone(),
                            expiring: *expiring,
                            rotated: false,
                            state: KeyState::Active,
                            busy: false,
                        },
                    );
                } else if rows.len() > 1 {
                    problems.push(format!("{} keys named {name:?}", rows.len()));
                }
                rows.len() == 1
            }
            Op::RotateKey { id, grace } => {
                let (name, expiring) = {
                    let k = &w.keys[id];
                    (k.name.clone(), k.expiring)
                };
                let known: HashSet<&String> = w
                    .keys
                    .iter()
                    .filter(|(_, k)| k.name == name)
                    .map(|(id, _)| id)
                    .collect();
                let rows = s.named(&name);
                let new: Vec<String> = rows
                    .iter()
                    .filter(|c| !known.contains(&c.id))
                    .map(|c| c.id.clone())
                    .collect();
                let old_expiry = s.credential(id).and_then(|c| c.expires_at);
                let applied = match new.as_slice() {
                    [] => {
                        let untouched = if expiring {
                            old_expiry.is_some_and(|e| e > now + 2 * DAY_MS)
                        } else {
                            old_expiry.is_none()
                        };
                        if !untouched {
                            problems.push(format!(
                                "rotation of {id} not applied, yet its expiry is {old_expiry:?}"
                            ));
                        }
                        false
                    }
                    [new] => {
                        let cut = old_expiry.is_some_and(|e| e <= now + grace * 1000);
                        if !cut {
                            problems.push(format!(
                                "rotation of {id} made {new}, yet the old key expires at {old_expiry:?}"
                            ));
                        }
                        w.keys.insert(
                            new.clone(),
                            Key {
                                name: name.clone(),
                                token: None,
                                project: None,
                                expiring,
                                rotated: false,
                                state: KeyState::Active,
                                busy: false,
                            },
                        );
                        true
                    }
                    more => {
                        problems.push(format!("one rotation of {id} made {more:?}"));
                        true
                    }
                };
                let k = w.keys.get_mut(id).unwrap();
                k.busy = false;
                if applied {
                    k.rotated = true;
                    k.state = if *grace == 0 {
                        KeyState::Expired
                    } else {
                        KeyState::Graced
                    };
                }
                audits.push((id.clone(), "access_key.rotated", applied as usize));
                applied
            }
            Op::RevokeKey { id } => {
                let applied = s.credential(id).is_some_and(|c| c.revoked_at.is_some());
                let k = w.keys.get_mut(id).unwrap();
                k.busy = false;
                if applied {
                    k.state = KeyState::Revoked;
                }
                audits.push((id.clone(), "access_key.revoked", applied as usize));
                applied
            }
            Op::CreateProject { name } => {
                let rows: Vec<&ProjectRow> =
                    s.projects.iter().filter(|p| p.name == *name).collect();
                if let [row] = rows.as_slice() {
                    let envs: Vec<&EnvironmentRow> = s
                        .environments
                        .iter()
                        .filter(|e| e.project_id == row.id)
                        .collect();
                    let sandbox = envs
                        .iter()
                        .find(|e| e.name == "sandbox")
                        .map(|e| e.id.clone())
                        .unwrap_or_default();
                    w.projects.insert(
                        row.id.clone(),
                        Project {
                            name: name.clone(),
                            environments: envs.iter().map(|e| e.id.clone()).collect(),
                            sandbox,
                            renames: 0,
                            deleted: false,
                            busy: false,
                        },
                    );
                    audits.push((row.id.clone(), "project.created", 1));
                } else if rows.len() > 1 {
                    problems.push(format!("{} projects named {name:?}", rows.len()));
                }
                rows.len() == 1
            }
            Op::RenameProject { id, name } => {
                let stored = s.project(id).map(|p| p.name.clone()).unwrap_or_default();
                let p = w.projects.get_mut(id).unwrap();
                p.busy = false;
                if stored == *name {
                    p.name = name.clone();
                    p.renames += 1;
                    true
                } else {
                    if stored != p.name {
                        problems.push(format!(
                            "project {id} is named {stored:?}, neither {:?} nor {name:?}",
                            p.name
                        ));
                    }
                    false
                }
            }
            Op::CreateEnvironment { project, name } => {
                let row = s
                    .environments
                    .iter()
                    .find(|e| e.project_id == *project && e.name == *name);
                let p = w.projects.get_mut(project).unwrap();
                p.busy = false;
                if let Some(row) = row {
                    p.environments.push(row.id.clone());
                    audits.push((row.id.clone(), "environment.created", 1));
                }
                row.is_some()
            }
            Op::DeleteProject { id } => {
                let applied = s.project(id).is_some_and(|p| p.deleted_at.is_some());
                if applied {
                    w.project_deleted(id);
                } else {
                    w.projects.get_mut(id).unwrap().busy = false;
                }
                audits.push((id.clone(), "project.deleted", applied as usize));
                applied
            }
            Op::CreateWebhook { url } => {
                let rows: Vec<&WebhookRow> = s.webhooks.iter().filter(|h| h.url == *url).collect();
                if let [row] = rows.as_slice() {
                    w.hooks.insert(
                        row.id.clone(),
                        Hook {
                            url: url.clone(),
                            deleted: false,
                            busy: false,
                        },
                    );
                    audits.push((row.id.clone(), "webhook.created", 1));
                } else if rows.len() > 1 {
                    problems.push(format!("{} webhooks at {url}", rows.len()));
                }
                rows.len() == 1
            }
            Op::DeleteWebhook { id } => {
                let applied = s
                    .webhooks
                    .iter()
                    .any(|h| h.id == *id && h.deleted_at.is_some());
                let h = w.hooks.get_mut(id).unwrap();
                h.busy = false;
                h.deleted = applied;
                audits.push((id.clone(), "webhook.deleted", applied as usize));
                applied
            }
            Op::MintToken { user } => {
                // The token itself was lost with the answer; the user is
                // not used again.
                let applied = s.end_users.contains(&(user.clone(), w.app.id.clone()));
                audits.push((user.clone(), "connect_token.created", applied as usize));
                applied
            }
            Op::Connect { user } => {
                let row = s
                    .connections
                    .iter()
                    .find(|c| c.user_id == *user && c.app_id == w.app.id);
                if let Some(row) = row {
                    audits.push((row.id.clone(), "connection.created", 1));
                }
                let u = w.users.get_mut(user).unwrap();
                u.busy = false;
                u.connected = row.is_some();
                row.is_some()
            }
            Op::Disconnect { user } => {
                let present = s
                    .connections
                    .iter()
                    .any(|c| c.user_id == *user && c.app_id == w.app.id);
                let u = w.users.get_mut(user).unwrap();
                u.busy = false;
                u.connected = present;
                !present
            }
        };
        if applied && !p.sent {
            problems.push(format!(
                "{:?} was never sent (its connection was refused) but is applied",
                p.op
            ));
        }
        if p.sent && applied {
            w.in_flight_applied += 1;
        }
    }
    audits
}

/// A request whose answer must match what the clients were told.
struct Probe {
    path: String,
    token: String,
    expect: Expect,
}

enum Expect {
    /// `GET /v1/tokens/me` answers for this key; `expiring`: with an expiry.
    Works {
        id: String,
        expiring: bool,
    },
    /// 401 `unauthorized`.
    Refused,
    /// 404 `not_found`.
    Gone,
    Project {
        name: String,
        environments: Vec<String>,
    },
    Webhook {
        url: String,
    },
    /// The end user holds an active connection for the app, or none.
    EndUser {
        app_id: String,
        connected: bool,
    },
    /// `GET /v1/connect/session` answers for this user.
    Session {
        user: String,
    },
}

/// The probes of everything the clients know, and the stored state of
/// each key and project checked against it on the way.
fn probes(w: &World, s: &Snapshot, problems: &mut Vec<String>) -> Vec<Probe> {
    let mut out = Vec::new();
    let key = w.boot.key.clone();
    // The bootstrap key is never touched by the stream.
    out.push(Probe {
        path: "/v1/tokens/me".into(),
        token: key.clone(),
        expect: Expect::Works {
            id: w.boot.key_id.clone(),
            expiring: false,
        },
    });
    for (id, k) in &w.keys {
        let Some(row) = s.credential(id) else {
            problems.push(format!("key {id} ({:?}) is not stored", k.state));
            continue;
        };
        let revoked = matches!(k.state, KeyState::Revoked | KeyState::RevokedWithProject);
        let expires = k.expiring || k.rotated;
        if row.revoked_at.is_some() != revoked || row.expires_at.is_some() != expires {
            problems.push(format!(
                "key {id} is {:?} but stored with revoked_at {:?}, expires_at {:?}",
                k.state, row.revoked_at, row.expires_at
            ));
        }
        let Some(token) = &k.token else { continue };
        let expect = match k.state {
            KeyState::Active | KeyState::Graced => Expect::Works {
                id: id.clone(),
                expiring: expires,
            },
            _ => Expect::Refused,
        };
        out.push(Probe {
            path: "/v1/tokens/me".into(),
            token: token.clone(),
            expect,
        });
    }
    for (id, p) in &w.projects {
        let updates = s.events("project.updated", id);
        if updates != p.renames {
            problems.push(format!(
                "project {id} was renamed {} times; {updates} update events",
                p.renames
            ));
        }
        out.push(Probe {
            path: format!("/v1/projects/{id}"),
            token: key.clone(),
            expect: if p.deleted {
                Expect::Gone
            } else {
                Expect::Project {
                    name: p.name.clone(),
                    environments: p.environments.clone(),
                }
            },
        });
    }
    for (id, h) in &w.hooks {
        out.push(Probe {
            path: format!("/v1/webhooks/{id}"),
            token: key.clone(),
            expect: if h.deleted {
                Expect::Gone
            } else {
                Expect::Webhook { url: h.url.clone() }
            },
        });
    }
    for (user, u) in &w.users {
        out.push(Probe {
            path: format!("/v1/end-users/{user}?environment_id={}", w.boot.sandbox),
            token: key.clone(),
            expect: Expect::EndUser {
                app_id: w.app.id.clone(),
                connected: u.connected,
            },
        });
        out.push(Probe {
            path: "/v1/connect/session".into(),
            token: u.token.clone(),
            expect: Expect::Session { user: user.clone() },
        });
    }
    out
}

/// Runs the probes, a few at a time; the mismatches.
async fn run_probes(api: &Api, probes: Vec<Probe>) -> Vec<String> {
    let gate = Arc::new(tokio::sync::Semaphore::new(8));
    let mut running = tokio::task::JoinSet::new();
    for probe in probes {
        let (api, gate) = (api.clone(), gate.clone());
        running.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let (status, body) = api.get(&probe.path, &probe.token).await;
            judge(&probe, status, &body)
                .err()
                .map(|why| format!("GET {} → {status} {body}: {why}", probe.path))
        });
    }
    let mut problems = Vec::new();
    while let Some(done) = running.join_next().await {
        problems.extend(done.unwrap());
    }
    problems
}

fn judge(probe: &Probe, status: StatusCode, body: &Value) -> Result<(), &'static str> {
    let data = &body["data"];
    let ok = |cond: bool, why: &'static str| if cond { Ok(()) } else { Err(why) };
    match &probe.expect {
        Expect::Works { id, expiring } => {
            ok(status == StatusCode::OK, "an acknowledged key must work")?;
            ok(data["id"] == id.as_str(), "a key answers as itself")?;
            ok(
                data["expires_at"].is_string() == *expiring,
                "expires_at as written",
            )
        }
        Expect::Refused => ok(
            status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "unauthorized",
            "a revoked or expired key is refused",
        ),
        Expect::Gone => ok(
            status == StatusCode::NOT_FOUND && body["error"]["code"] == "not_found",
            "an acknowledged deletion stays done",
        ),
        Expect::Project { name, environments } => {
            ok(status == StatusCode::OK, "an acknowledged project exists")?;
            ok(data["name"] == name.as_str(), "the project's last name")?;
            let have: Vec<&str> = data["environments"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
                .unwrap_or_default();
            ok(
                environments.iter().all(|e| have.contains(&e.as_str())),
                "every acknowledged environment of the project",
            )
        }
        Expect::Webhook { url } => {
            ok(status == StatusCode::OK, "an acknowledged webhook exists")?;
            ok(data["url"] == url.as_str(), "the webhook's url")
        }
        Expect::EndUser { app_id, connected } => {
            ok(status == StatusCode::OK, "a minted end user exists")?;
            let active = data["connections"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| {
                            c["app_id"] == app_id.as_str()
                                && c["requirement_name"] == "openai"
                                && c["status"] == "active"
                        })
                        .count()
                })
                .unwrap_or(0);
            ok(
                active == usize::from(*connected),
                "connected as acknowledged",
            )
        }
        Expect::Session { user } => {
            ok(status == StatusCode::OK, "a minted connect token works")?;
            ok(data["user_id"] == user.as_str(), "the token's user")
        }
    }
}
