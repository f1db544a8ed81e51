//! What is stored: the tables the checks read, straight from the
//! database, and the invariants they keep at any committed moment.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::{common::query_text, common::TestData, Boot};

pub struct Credential {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

pub struct EnvironmentRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

pub struct WebhookRow {
    pub id: String,
    pub project_id: String,
    pub url: String,
    pub deleted_at: Option<i64>,
}

pub struct OutboxRow {
    pub kind: String,
    pub environment_id: String,
    pub data: Value,
}

pub struct ConnectionRow {
    pub id: String,
    pub app_id: String,
    pub user_id: String,
}

/// The tables the checks read, at one moment.
pub struct Snapshot {
    pub credentials: Vec<Credential>,
    /// (action, target id) → how many audit events.
    pub events: HashMap<(String, String), usize>,
    pub outbox: Vec<OutboxRow>,
    pub projects: Vec<ProjectRow>,
    pub environments: Vec<EnvironmentRow>,
    pub webhooks: Vec<WebhookRow>,
    pub connections: Vec<ConnectionRow>,
    /// (user id, app id).
    pub end_users: HashSet<(String, String)>,
    pub migrations: Vec<Option<String>>,
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn ms(v: &Option<String>) -> Option<i64> {
    v.as_deref().map(|s| s.parse().unwrap())
}

impl Snapshot {
    pub async fn load(data: &TestData) -> Self {
        let q = |sql: &'static str| query_text(data, sql);
        let credentials = q("SELECT id, kind, name, project_id, environment_id, \
                             CAST(expires_at AS TEXT), CAST(revoked_at AS TEXT) FROM credentials")
        .await
        .iter()
        .map(|r| Credential {
            id: text(&r[0]),
            kind: text(&r[1]),
            name: text(&r[2]),
            project_id: r[3].clone(),
            environment_id: r[4].clone(),
            expires_at: ms(&r[5]),
            revoked_at: ms(&r[6]),
        })
        .collect();
        let mut events = HashMap::new();
        for r in q("SELECT action, target_id FROM audit_events").await {
            *events.entry((text(&r[0]), text(&r[1]))).or_insert(0) += 1;
        }
        let outbox = q("SELECT type, environment_id, body FROM webhook_events")
            .await
            .iter()
            .map(|r| OutboxRow {
                kind: text(&r[0]),
                environment_id: text(&r[1]),
                data: serde_json::from_str::<Value>(&text(&r[2])).unwrap()["data"].clone(),
            })
            .collect();
        let projects = q(
            "SELECT id, name, CAST(created_at AS TEXT), CAST(deleted_at AS TEXT) \
                          FROM projects",
        )
        .await
        .iter()
        .map(|r| ProjectRow {
            id: text(&r[0]),
            name: text(&r[1]),
            created_at: ms(&r[2]).unwrap(),
            deleted_at: ms(&r[3]),
        })
        .collect();
        let environments = q("SELECT id, project_id, name, CAST(created_at AS TEXT), \
                              CAST(deleted_at AS TEXT) FROM environments")
        .await
        .iter()
        .map(|r| EnvironmentRow {
            id: text(&r[0]),
            project_id: text(&r[1]),
            name: text(&r[2]),
            created_at: ms(&r[3]).unwrap(),
            deleted_at: ms(&r[4]),
        })
        .collect();
        let webhooks = q("SELECT id, project_id, url, CAST(deleted_at AS TEXT) FROM webhooks")
            .await
            .iter()
            .map(|r| WebhookRow {
                id: text(&r[0]),
                project_id: text(&r[1]),
                url: text(&r[2]),
                deleted_at: ms(&r[3]),
            })
            .collect();
        let connections = q("SELECT id, app_id, user_id FROM connections")
            .await
            .iter()
            .map(|r| ConnectionRow {
                id: text(&r[0]),
                app_id: text(&r[1]),
                user_id: text(&r[2]),
            })
            .collect();
        let end_users = q("SELECT user_id, app_id FROM end_users")
            .await
            .iter()
            .map(|r| (text(&r[0]), text(&r[1])))
            .collect();
        let migrations = q("SELECT CAST(success AS TEXT) FROM _sqlx_migrations")
            .await
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect();
        Self {
            credentials,
            events,
            outbox,
            projects,
            environments,
            webhooks,
            connections,
            end_users,
            migrations,
        }
    }

    pub fn events(&self, action: &str, target: &str) -> usize {
        self.events
            .get(&(action.to_string(), target.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn credential(&self, id: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    pub fn named(&self, name: &str) -> Vec<&Credential> {
        self.credentials.iter().filter(|c| c.name == name).collect()
    }

    pub fn project(&self, id: &str) -> Option<&ProjectRow> {
        self.projects.iter().find(|p| p.id == id)
    }

    pub fn announced(&self, kind: &str, field: &str, id: &str) -> Vec<&OutboxRow> {
        self.outbox
            .iter()
            .filter(|o| o.kind == kind && o.data[field] == id)
            .collect()
    }
}

/// What holds of the stored data at any committed moment, whatever the
/// clients were told.
pub fn invariants(s: &Snapshot, boot: &Boot, problems: &mut Vec<String>) {
    let deleted: HashMap<&str, i64> = s
        .projects
        .iter()
        .filter_map(|p| p.deleted_at.map(|at| (p.id.as_str(), at)))
        .collect();

    // Each credential name starts with one creation; each rotation added
    // the next credential of the name and gave the old one an expiry.
    let mut by_name: BTreeMap<&str, Vec<&Credential>> = BTreeMap::new();
    for c in &s.credentials {
        by_name.entry(&c.name).or_default().push(c);
    }
    for (name, group) in &by_name {
        let created: Vec<usize> = group
            .iter()
            .map(|c| s.events(&format!("{}.created", c.kind), &c.id))
            .collect();
        let rotated: Vec<usize> = group
            .iter()
            .map(|c| s.events(&format!("{}.rotated", c.kind), &c.id))
            .collect();
        if created.iter().sum::<usize>() != 1 || created.iter().any(|&n| n > 1) {
            problems.push(format!(
                "credentials named {name:?}: creation events {created:?}"
            ));
        }
        if rotated.iter().sum::<usize>() != group.len() - 1 || rotated.iter().any(|&n| n > 1) {
            problems.push(format!(
                "credentials named {name:?} ({} rows): rotation events {rotated:?}",
                group.len()
            ));
        }
        for (c, n) in group.iter().zip(&rotated) {
            if *n == 1 && c.expires_at.is_none() {
                problems.push(format!("{} was rotated but never expires", c.id));
            }
        }
    }

    // A revocation is its event and, for an access key, its outbox rows;
    // or the deletion of the key's project.
    for c in &s.credentials {
        let events = s.events(&format!("{}.revoked", c.kind), &c.id);
        let project_at = c.project_id.as_deref().and_then(|p| deleted.get(p));
        let with_project = project_at.is_some() && c.revoked_at == project_at.copied();
        let consistent = match (c.revoked_at.is_some(), events) {
            (true, 1) => true,
            (true, 0) => with_project,
            (false, 0) => project_at.is_none(),
            _ => false,
        };
        if !consistent {
            problems.push(format!(
                "{}: revoked_at {:?}, {events} revocation events, project deleted at {project_at:?}",
                c.id, c.revoked_at
            ));
        }
        if c.kind == "access_key" && events == 1 {
            let announced = s.announced("access_key.revoked", "access_key_id", &c.id);
            let ok = match &c.environment_id {
                Some(env) => announced.len() == 1 && announced[0].environment_id == *env,
                None => !announced.is_empty(),
            };
            if !ok {
                problems.push(format!(
                    "{} was revoked; outbox rows announcing it: {}",
                    c.id,
                    announced.len()
                ));
            }
        }
    }
    for o in s.outbox.iter().filter(|o| o.kind == "access_key.revoked") {
        let id = o.data["access_key_id"].as_str().unwrap_or_default();
        let revoked = s.credential(id).is_some_and(|c| c.revoked_at.is_some())
            && s.events("access_key.revoked", id) == 1;
        if !revoked {
            problems.push(format!(
                "the outbox announces the revocation of {id}, which is not revoked"
            ));
        }
    }

    // Every creation event names what it created.
    for (action, target) in s.events.keys() {
        let exists = match action.as_str() {
            "access_key.created"
            | "access_key.rotated"
            | "access_key.revoked"
            | "personal_access_token.created" => s.credential(target).is_some(),
            "project.created" | "project.updated" | "project.deleted" => {
                s.project(target).is_some()
            }
            "environment.created" => s.environments.iter().any(|e| e.id == *target),
            "webhook.created" | "webhook.deleted" => s.webhooks.iter().any(|w| w.id == *target),
            "connection.created" => {
                s.connections.iter().any(|c| c.id == *target)
                    || s.events("connection.deleted", target) == 1
            }
            "connect_token.created" => s.end_users.iter().any(|(u, _)| u == target),
            _ => true,
        };
        if !exists {
            problems.push(format!(
                "audit event {action} names {target}, which is not stored"
            ));
        }
    }

    // Projects come with their two environments and go with everything in
    // them.
    for p in &s.projects {
        if p.id != boot.project_id && s.events("project.created", &p.id) != 1 {
            problems.push(format!("project {} has no single creation event", p.id));
        }
        let deletions = s.events("project.deleted", &p.id);
        if (p.deleted_at.is_some() as usize) != deletions {
            problems.push(format!(
                "project {}: deleted_at {:?}, {deletions} deletion events",
                p.id, p.deleted_at
            ));
        }
        let envs: Vec<&EnvironmentRow> = s
            .environments
            .iter()
            .filter(|e| e.project_id == p.id)
            .collect();
        let defaults = envs
            .iter()
            .filter(|e| (e.name == "sandbox" || e.name == "live") && e.created_at == p.created_at)
            .count();
        if defaults != 2 {
            problems.push(format!(
                "project {} has {defaults} default environments",
                p.id
            ));
        }
        if let Some(at) = p.deleted_at {
            for e in envs.iter().filter(|e| e.deleted_at != Some(at)) {
                problems.push(format!(
                    "environment {} outlived its deleted project {}",
                    e.id, p.id
                ));
            }
            for w in s
                .webhooks
                .iter()
                .filter(|w| w.project_id == p.id && w.deleted_at.is_none())
            {
                problems.push(format!(
                    "webhook {} outlived its deleted project {}",
                    w.id, p.id
                ));
            }
        }
    }
    for e in &s.environments {
        let default = e.name == "sandbox" || e.name == "live";
        if !default && s.events("environment.created", &e.id) != 1 {
            problems.push(format!("environment {} has no single creation event", e.id));
        }
    }
    for w in &s.webhooks {
        if s.events("webhook.created", &w.id) != 1 {
            problems.push(format!("webhook {} has no single creation event", w.id));
        }
        let deletions = s.events("webhook.deleted", &w.id);
        let with_project = deleted.contains_key(w.project_id.as_str());
        if w.deleted_at.is_some() != (deletions == 1 || with_project) || deletions > 1 {
            problems.push(format!(
                "webhook {}: deleted_at {:?}, {deletions} deletion events",
                w.id, w.deleted_at
            ));
        }
    }

    // A connection is its row, its event and its outbox row; so is its
    // deletion.
    for c in &s.connections {
        let events = s.events("connection.created", &c.id);
        let announced = s
            .announced("connection.created", "connection_id", &c.id)
            .len();
        if events != 1 || announced != 1 {
            problems.push(format!(
                "connection {}: {events} creation events, {announced} outbox rows",
                c.id
            ));
        }
        if !s.end_users.contains(&(c.user_id.clone(), c.app_id.clone())) {
            problems.push(format!("connection {} has no end user", c.id));
        }
    }
    for (action, target) in s.events.keys() {
        if action == "connection.deleted" {
            let announced = s
                .announced("connection.deleted", "connection_id", target)
                .len();
            if announced != 1 || s.connections.iter().any(|c| c.id == *target) {
                problems.push(format!(
                    "connection {target} deleted: {announced} outbox rows, row still stored: {}",
                    s.connections.iter().any(|c| c.id == *target)
                ));
            }
        }
    }
    for (user, _) in &s.end_users {
        if s.events("connect_token.created", user) == 0 {
            problems.push(format!("end user {user} exists without a minted token"));
        }
    }
}
