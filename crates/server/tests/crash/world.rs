//! What the clients believe is stored: every entity they were told about
//! and its state, the next write to make (on a target no other client is
//! writing to), and the writes waiting for their outcome.

use std::collections::BTreeMap;

use gatehouse_core::time::{format_ms, now_ms};
use rand::{rngs::StdRng, seq::IndexedRandom, Rng};
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    client::{Call, Outcome},
    App, Boot, DAY_MS, EVENTS, GRACE, HOOKS, OPENAI,
};

/// A write the stream makes.
#[derive(Debug, Clone)]
pub enum Op {
    CreateKey {
        name: String,
        /// A throwaway project the key is scoped to.
        project: Option<String>,
        expiring: bool,
    },
    RotateKey {
        id: String,
        grace: i64,
    },
    RevokeKey {
        id: String,
    },
    CreateProject {
        name: String,
    },
    RenameProject {
        id: String,
        name: String,
    },
    CreateEnvironment {
        project: String,
        name: String,
    },
    DeleteProject {
        id: String,
    },
    CreateWebhook {
        url: String,
    },
    DeleteWebhook {
        id: String,
    },
    MintToken {
        user: String,
    },
    Connect {
        user: String,
    },
    Disconnect {
        user: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    /// Rotated with a grace period: still works, now expires.
    Graced,
    /// Rotated without a grace period.
    Expired,
    Revoked,
    /// Revoked by deleting its project.
    RevokedWithProject,
}

#[derive(Debug)]
pub struct Key {
    pub name: String,
    /// Unknown for a key whose create (or rotate) answer was lost.
    pub token: Option<String>,
    pub project: Option<String>,
    /// Created with an `expires_at` 30 days ahead.
    pub expiring: bool,
    /// Given an expiry by a rotation.
    pub rotated: bool,
    pub state: KeyState,
    pub busy: bool,
}

#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub environments: Vec<String>,
    pub sandbox: String,
    pub renames: usize,
    pub deleted: bool,
    pub busy: bool,
}

#[derive(Debug)]
pub struct Hook {
    pub url: String,
    pub deleted: bool,
    pub busy: bool,
}

#[derive(Debug)]
pub struct EndUser {
    pub token: String,
    pub connected: bool,
    pub busy: bool,
}

/// A write without an answer, resolved against the database after the
/// restart.
#[derive(Debug)]
pub struct Pending {
    pub op: Op,
    /// False when the connection was refused.
    pub sent: bool,
}

/// Everything the clients were told, and what they are waiting to learn.
pub struct World {
    pub boot: Boot,
    pub app: App,
    pub next: u64,
    pub keys: BTreeMap<String, Key>,
    pub projects: BTreeMap<String, Project>,
    pub hooks: BTreeMap<String, Hook>,
    pub users: BTreeMap<String, EndUser>,
    pub pending: Vec<Pending>,
    pub acked: u64,
    pub in_flight: u64,
    pub in_flight_applied: u64,
    pub not_sent: u64,
}

/// A random element of `items`.
fn pick(rng: &mut StdRng, items: Vec<String>) -> Option<String> {
    items.choose(rng).cloned()
}

impl World {
    pub fn new(boot: Boot, app: App) -> Self {
        Self {
            boot,
            app,
            next: 0,
            keys: BTreeMap::new(),
            projects: BTreeMap::new(),
            hooks: BTreeMap::new(),
            users: BTreeMap::new(),
            pending: Vec::new(),
            acked: 0,
            in_flight: 0,
            in_flight_applied: 0,
            not_sent: 0,
        }
    }

    fn unique(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn call(&self, method: Method, path: String, body: Option<Value>) -> Call {
        Call {
            method,
            path,
            on_app: false,
            token: self.boot.key.clone(),
            body,
        }
    }

    /// The next write: chosen at random among those that have a target,
    /// which is marked busy until the write's outcome is known.
    pub fn plan(&mut self, rng: &mut StdRng) -> (Op, Call) {
        loop {
            let planned = match rng.random_range(0..100) {
                0..=24 => Some(self.create_key(rng)),
                25..=39 => self.rotate_key(rng),
                40..=49 => self.revoke_key(rng),
                50..=54 => Some(self.create_project()),
                55..=59 => self.rename_project(rng),
                60..=63 => self.create_environment(rng),
                64..=69 => self.create_project_key(rng),
                70..=72 => self.delete_project(rng),
                73..=77 => Some(self.create_webhook()),
                78..=80 => self.delete_webhook(rng),
                81..=88 => Some(self.mint_token()),
                89..=95 => self.connect(rng),
                _ => self.disconnect(rng),
            };
            if let Some(p) = planned {
                return p;
            }
        }
    }

    fn create_key(&mut self, rng: &mut StdRng) -> (Op, Call) {
        let name = format!("crash key {}", self.unique());
        let mut body = match rng.random_range(0..4) {
            0 => json!({"name": name}),
            1 => json!({"name": name, "project_id": self.boot.project_id}),
            2 => json!({"name": name, "environment_id": self.boot.sandbox}),
            _ => json!({"name": name, "environment_id": self.boot.live}),
        };
        match rng.random_range(0..4) {
            0 => {}
            1 => body["scopes"] = json!(["keys:read"]),
            2 => body["scopes"] = json!(["apps:read", "connections:read"]),
            _ => body["scopes"] = json!(["webhooks:read", "webhooks:write", "audit:read"]),
        }
        let expiring = rng.random_bool(0.3);
        if expiring {
            body["expires_at"] = json!(format_ms(now_ms() + 30 * DAY_MS));
        }
        let call = self.call(Method::POST, "/v1/access-keys".into(), Some(body));
        (
            Op::CreateKey {
                name,
                project: None,
                expiring,
            },
            call,
        )
    }

    /// Keys of the main project with a known token, in one of `states`,
    /// and not busy.
    fn usable_keys(&self, states: &[KeyState]) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, k)| {
                !k.busy && k.token.is_some() && k.project.is_none() && states.contains(&k.state)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn rotate_key(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let id = pick(rng, self.usable_keys(&[KeyState::Active]))?;
        self.keys.get_mut(&id).unwrap().busy = true;
        let grace = if rng.random_bool(0.5) { 0 } else { GRACE };
        let call = self.call(
            Method::POST,
            format!("/v1/access-keys/{id}/rotate"),
            Some(json!({"grace_period_seconds": grace})),
        );
        Some((Op::RotateKey { id, grace }, call))
    }

    fn revoke_key(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let id = pick(rng, self.usable_keys(&[KeyState::Active, KeyState::Graced]))?;
        self.keys.get_mut(&id).unwrap().busy = true;
        let call = self.call(Method::DELETE, format!("/v1/access-keys/{id}"), None);
        Some((Op::RevokeKey { id }, call))
    }

    fn create_project(&mut self) -> (Op, Call) {
        let name = format!("crash project {}", self.unique());
        let call = self.call(
            Method::POST,
            "/v1/projects".into(),
            Some(json!({"name": name})),
        );
        (Op::CreateProject { name }, call)
    }

    /// A live throwaway project, marked busy.
    fn take_project(&mut self, rng: &mut StdRng) -> Option<String> {
        let free = self
            .projects
            .iter()
            .filter(|(_, p)| !p.busy && !p.deleted)
            .map(|(id, _)| id.clone())
            .collect();
        let id = pick(rng, free)?;
        self.projects.get_mut(&id).unwrap().busy = true;
        Some(id)
    }

    fn rename_project(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let id = self.take_project(rng)?;
        let name = format!("crash project {} renamed", self.unique());
        let call = self.call(
            Method::PATCH,
            format!("/v1/projects/{id}"),
            Some(json!({"name": name})),
        );
        Some((Op::RenameProject { id, name }, call))
    }

    fn create_environment(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let project = self.take_project(rng)?;
        let name = format!("env-{}", self.unique());
        let call = self.call(
            Method::POST,
            format!("/v1/projects/{project}/environments"),
            Some(json!({"name": name})),
        );
        Some((Op::CreateEnvironment { project, name }, call))
    }

    fn create_project_key(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let project = self.take_project(rng)?;
        let name = format!("crash key {}", self.unique());
        let env = self.projects[&project].sandbox.clone();
        let call = self.call(
            Method::POST,
            "/v1/access-keys".into(),
            Some(json!({"name": name, "environment_id": env})),
        );
        Some((
            Op::CreateKey {
                name,
                project: Some(project),
                expiring: false,
            },
            call,
        ))
    }

    fn delete_project(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let id = self.take_project(rng)?;
        let call = self.call(Method::DELETE, format!("/v1/projects/{id}"), None);
        Some((Op::DeleteProject { id }, call))
    }

    fn create_webhook(&mut self) -> (Op, Call) {
        let url = format!("{HOOKS}/crash/{}", self.unique());
        let call = self.call(
            Method::POST,
            "/v1/webhooks".into(),
            Some(json!({"environment_id": self.boot.sandbox, "url": url, "events": EVENTS})),
        );
        (Op::CreateWebhook { url }, call)
    }

    fn delete_webhook(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let free = self
            .hooks
            .iter()
            .filter(|(_, h)| !h.busy && !h.deleted)
            .map(|(id, _)| id.clone())
            .collect();
        let id = pick(rng, free)?;
        self.hooks.get_mut(&id).unwrap().busy = true;
        let call = self.call(Method::DELETE, format!("/v1/webhooks/{id}"), None);
        Some((Op::DeleteWebhook { id }, call))
    }

    fn mint_token(&mut self) -> (Op, Call) {
        let user = format!("crash-user-{}", self.unique());
        let mut call = self.call(
            Method::POST,
            "/v1/connect/tokens".into(),
            Some(json!({"user_id": user})),
        );
        call.on_app = true;
        (Op::MintToken { user }, call)
    }

    /// An end user connected (or not), marked busy, with their token.
    fn take_user(&mut self, rng: &mut StdRng, connected: bool) -> Option<(String, String)> {
        let free = self
            .users
            .iter()
            .filter(|(_, u)| !u.busy && u.connected == connected)
            .map(|(id, _)| id.clone())
            .collect();
        let user = pick(rng, free)?;
        let u = self.users.get_mut(&user).unwrap();
        u.busy = true;
        Some((user, u.token.clone()))
    }

    fn connect(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let (user, token) = self.take_user(rng, false)?;
        let call = Call {
            method: Method::POST,
            path: format!(
                "/v1/connect/requirements/{}/credentials",
                self.app.requirement_id
            ),
            on_app: false,
            token,
            body: Some(json!({"type": OPENAI, "config": {"api_key": format!("sk-{user}")}})),
        };
        Some((Op::Connect { user }, call))
    }

    fn disconnect(&mut self, rng: &mut StdRng) -> Option<(Op, Call)> {
        let (user, token) = self.take_user(rng, true)?;
        let call = Call {
            method: Method::DELETE,
            path: format!(
                "/v1/connect/requirements/{}/connection",
                self.app.requirement_id
            ),
            on_app: false,
            token,
            body: None,
        };
        Some((Op::Disconnect { user }, call))
    }

    /// Takes in what became of `op`. Every write of the stream is valid, so
    /// an answer other than 2xx is a failure.
    pub fn apply(&mut self, op: Op, outcome: Outcome) -> Result<(), String> {
        match outcome {
            Outcome::Done(body) => {
                self.acked += 1;
                self.done(op, &body);
                Ok(())
            }
            Outcome::Refused(status, text) => Err(format!("{op:?} was refused: {status} {text}")),
            Outcome::Unknown(_) => {
                self.in_flight += 1;
                self.pending.push(Pending { op, sent: true });
                Ok(())
            }
            Outcome::NotSent => {
                self.not_sent += 1;
                self.pending.push(Pending { op, sent: false });
                Ok(())
            }
        }
    }

    /// An acknowledged write.
    fn done(&mut self, op: Op, body: &Value) {
        let data = &body["data"];
        let id = data["id"].as_str().unwrap_or_default().to_string();
        match op {
            Op::CreateKey {
                name,
                project,
                expiring,
            } => {
                if let Some(p) = &project {
                    self.projects.get_mut(p).unwrap().busy = false;
                }
                let token = data["token"].as_str().unwrap().to_string();
                self.keys.insert(
                    id,
                    Key {
                        name,
                        token: Some(token),
                        project,
                        expiring,
                        rotated: false,
                        state: KeyState::Active,
                        busy: false,
                    },
                );
            }
            Op::RotateKey { id: old, grace } => {
                let k = self.keys.get_mut(&old).unwrap();
                k.busy = false;
                k.rotated = true;
                k.state = if grace == 0 {
                    KeyState::Expired
                } else {
                    KeyState::Graced
                };
                let new = Key {
                    name: k.name.clone(),
                    token: Some(data["token"].as_str().unwrap().to_string()),
                    project: None,
                    expiring: k.expiring,
                    rotated: false,
                    state: KeyState::Active,
                    busy: false,
                };
                self.keys.insert(id, new);
            }
            Op::RevokeKey { id } => {
                let k = self.keys.get_mut(&id).unwrap();
                k.state = KeyState::Revoked;
                k.busy = false;
            }
            Op::CreateProject { name } => {
                let envs = data["environments"].as_array().unwrap();
                let sandbox = envs.iter().find(|e| e["name"] == "sandbox").unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let environments = envs
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string())
                    .collect();
                self.projects.insert(
                    id,
                    Project {
                        name,
                        environments,
                        sandbox,
                        renames: 0,
                        deleted: false,
                        busy: false,
                    },
                );
            }
            Op::RenameProject { id, name } => {
                let p = self.projects.get_mut(&id).unwrap();
                p.name = name;
                p.renames += 1;
                p.busy = false;
            }
            Op::CreateEnvironment { project, .. } => {
                let p = self.projects.get_mut(&project).unwrap();
                p.environments.push(id);
                p.busy = false;
            }
            Op::DeleteProject { id } => self.project_deleted(&id),
            Op::CreateWebhook { url } => {
                self.hooks.insert(
                    id,
                    Hook {
                        url,
                        deleted: false,
                        busy: false,
                    },
                );
            }
            Op::DeleteWebhook { id } => {
                let h = self.hooks.get_mut(&id).unwrap();
                h.deleted = true;
                h.busy = false;
            }
            Op::MintToken { user } => {
                let token = body["token"].as_str().unwrap().to_string();
                self.users.insert(
                    user,
                    EndUser {
                        token,
                        connected: false,
                        busy: false,
                    },
                );
            }
            Op::Connect { user } | Op::Disconnect { user } => {
                let u = self.users.get_mut(&user).unwrap();
                u.connected = !u.connected;
                u.busy = false;
            }
        }
    }

    pub fn project_deleted(&mut self, id: &str) {
        let p = self.projects.get_mut(id).unwrap();
        p.deleted = true;
        p.busy = false;
        for k in self.keys.values_mut() {
            if k.project.as_deref() == Some(id) {
                k.state = KeyState::RevokedWithProject;
            }
        }
    }
}
