//! Tenant isolation, generated from the route table: every operation of
//! `gatehouse::http::openapi_document()` is tried with the credentials of
//! one tenant against the resources of another. Whatever names a
//! resource outside the credential's reach (a path parameter, a query
//! filter, an id in the body, the app's hostname) must answer exactly what
//! a well-formed id that exists nowhere answers, and never 2xx: existence
//! is never revealed (SPEC §2 404, §6 403 on another environment's app).
//! The same request with the credential's own resource must succeed, so a
//! check cannot pass by being malformed.
//!
//! Tenants: project A (its `sandbox` and `live` environments) and project
//! B. One installation is one organization (SPEC §10 bootstrap), so the
//! organization boundary is the installation's; see docs/decisions.md.
//!
//! A route the table below does not describe, or a parameter it does not
//! know, fails the test: a new route cannot skip the matrix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{Backend, Reply, TestData, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(a_tenant_cannot_reach_another_tenants_resources);

const API_KEY: &str = "dynamiq.connections.HttpApiKey";
const GITHUB: &str = "dynamiq.connections.GitHubOAuth2";

/// Every scope SPEC §3 names: the matrix's credentials hold them all, so
/// only reach can stop them.
const EVERY_SCOPE: &[&str] = &[
    "keys:read",
    "keys:write",
    "apps:read",
    "apps:write",
    "connections:read",
    "connections:write",
    "connections:reveal",
    "connect:write",
    "end_users:read",
    "end_users:write",
    "audit:read",
    "webhooks:read",
    "webhooks:write",
    "projects:read",
    "projects:write",
];

/// What a slot of a request (a path parameter, a query parameter or a
/// body field) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Project,
    Environment,
    AccessKey,
    Pat,
    Member,
    App,
    Version,
    ApiKeyRequirement,
    OAuth2Requirement,
    ActionRequirement,
    EndUser,
    Connection,
    Webhook,
    Delivery,
    Provider,
}

impl Kind {
    /// A well-formed id of this kind that exists nowhere.
    fn nonexistent(self) -> String {
        let ulid = ulid::Ulid::new().to_string().to_ascii_lowercase();
        let prefix = match self {
            Kind::Project => "prj",
            Kind::Environment => "env",
            Kind::AccessKey => "key",
            Kind::Pat => "pat",
            Kind::Member => "usr",
            Kind::App => "app",
            Kind::Version => "ver",
            Kind::ApiKeyRequirement | Kind::OAuth2Requirement | Kind::ActionRequirement => "req",
            Kind::EndUser => return format!("nobody-{ulid}"),
            Kind::Connection => "conn",
            Kind::Webhook => "whk",
            Kind::Delivery => "whd",
            Kind::Provider => "oap",
        };
        format!("{prefix}_{ulid}")
    }
}

/// Whether a request destroys or replaces what its first slot names (so
/// its own-resource control needs a fresh one).
fn destroys(method: &Method, path: &str) -> bool {
    *method == Method::DELETE
        || path.ends_with("/rotate")
        || path.ends_with("/connect-tokens/revoke")
}

/// Where a slot sits in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Path(&'static str),
    Query(&'static str),
    Body(&'static str),
}

/// What the matrix knows of one operation.
struct Operation {
    slots: Vec<(Place, Kind)>,
    /// The request body with every id slot filled in later.
    body: Option<Value>,
}

/// The matrix's description of `method path`, or `None` for a route
/// the matrix does not know (which fails the test).
fn describe(method: &Method, path: &str) -> Option<Operation> {
    use Kind::*;
    use Place::*;
    let op = |slots: Vec<(Place, Kind)>, body: Option<Value>| Some(Operation { slots, body });
    let m = method.as_str();
    match (m, path) {
        ("GET", "/v1/access-keys") => op(vec![(Query("environment_id"), Environment)], None),
        ("POST", "/v1/access-keys") => op(
            vec![(Body("environment_id"), Environment)],
            Some(json!({"name": "matrix", "scopes": ["apps:read"]})),
        ),
        ("GET" | "DELETE", "/v1/access-keys/{id}") => op(vec![(Path("id"), AccessKey)], None),
        ("POST", "/v1/access-keys/{id}/rotate") => {
            op(vec![(Path("id"), AccessKey)], Some(json!({})))
        }

        ("GET", "/v1/apps") => op(vec![(Query("environment_id"), Environment)], None),
        ("POST", "/v1/apps") => op(
            vec![(Body("environment_id"), Environment)],
            Some(json!({"name": "Matrix app {n}"})),
        ),
        ("GET" | "DELETE", "/v1/apps/{id}") => op(vec![(Path("id"), App)], None),
        ("PATCH", "/v1/apps/{id}") => op(vec![(Path("id"), App)], Some(json!({"name": "Renamed"}))),
        ("POST", "/v1/apps/{id}/deployments") => op(
            vec![(Path("id"), App), (Body("version_id"), Version)],
            Some(json!({})),
        ),
        ("GET", "/v1/apps/{id}/end-users/{user_id}/credentials") => {
            op(vec![(Path("id"), App), (Path("user_id"), EndUser)], None)
        }
        ("GET", "/v1/apps/{id}/versions") => op(vec![(Path("id"), App)], None),
        ("POST", "/v1/apps/{id}/versions") => op(
            vec![(Path("id"), App)],
            Some(json!({"requirements": requirements()})),
        ),

        ("GET", "/v1/audit-events") => op(vec![], None),

        ("GET", "/v1/connect/requirements")
        | ("GET", "/v1/connect/requirements/status")
        | ("GET", "/v1/connect/session")
        | ("DELETE", "/v1/connect/session") => op(vec![], None),
        ("POST", "/v1/connect/requirements/{id}/credentials") => op(
            vec![(Path("id"), ApiKeyRequirement)],
            Some(json!({"type": API_KEY,
                        "config": {"url": "https://api.example.com", "api_key": "sk-matrix"}})),
        ),
        ("DELETE", "/v1/connect/requirements/{id}/connection") => {
            op(vec![(Path("id"), ApiKeyRequirement)], None)
        }
        ("POST", "/v1/connect/requirements/{id}/oauth2/authorize") => {
            op(vec![(Path("id"), OAuth2Requirement)], None)
        }
        ("POST", "/v1/connect/requirements/{id}/action-connector/authorize") => {
            op(vec![(Path("id"), ActionRequirement)], None)
        }

        ("GET", "/v1/end-users") => op(
            vec![
                (Query("environment_id"), Environment),
                (Query("app_id"), App),
            ],
            None,
        ),
        ("GET" | "DELETE", "/v1/end-users/{user_id}") => op(
            vec![
                (Path("user_id"), EndUser),
                (Query("environment_id"), Environment),
            ],
            None,
        ),
        ("POST", "/v1/end-users/{user_id}/connect-tokens/revoke") => op(
            vec![
                (Path("user_id"), EndUser),
                (Query("environment_id"), Environment),
            ],
            None,
        ),
        ("DELETE", "/v1/end-users/{user_id}/connections/{conn_id}") => op(
            vec![
                (Path("user_id"), EndUser),
                (Path("conn_id"), Connection),
                (Query("environment_id"), Environment),
            ],
            None,
        ),

        ("GET", "/v1/environments/{id}") => op(vec![(Path("id"), Environment)], None),
        ("PATCH", "/v1/environments/{id}") => op(
            vec![(Path("id"), Environment)],
            Some(json!({"rate_limit": null})),
        ),

        ("GET", "/v1/oauth2-providers") => op(vec![(Query("environment_id"), Environment)], None),
        ("POST", "/v1/oauth2-providers") => op(
            vec![(Body("environment_id"), Environment)],
            Some(
                json!({"name": "Matrix {n}", "app_slug": "matrix-{n}", "preset": "slack",
                        "client_id": "matrix-id", "client_secret": "matrix-secret-1"}),
            ),
        ),
        ("GET" | "DELETE", "/v1/oauth2-providers/{id}") => op(vec![(Path("id"), Provider)], None),
        ("PATCH", "/v1/oauth2-providers/{id}") => op(
            vec![(Path("id"), Provider)],
            Some(json!({"scopes": ["channels:read"]})),
        ),

        ("GET", "/v1/organization") | ("GET", "/v1/organization/members") => op(vec![], None),
        ("POST", "/v1/organization/members") => op(
            vec![],
            Some(json!({"email": "matrix-{n}@example.com", "role": "viewer"})),
        ),
        ("DELETE", "/v1/organization/members/{id}") => op(vec![(Path("id"), Member)], None),
        ("PATCH", "/v1/organization/members/{id}") => op(
            vec![(Path("id"), Member)],
            Some(json!({"role": "developer"})),
        ),

        ("GET", "/v1/personal-access-tokens") => op(vec![], None),
        ("POST", "/v1/personal-access-tokens") => op(
            vec![(Body("environment_id"), Environment)],
            Some(json!({"name": "matrix", "scopes": ["apps:read"]})),
        ),
        ("GET" | "DELETE", "/v1/personal-access-tokens/{id}") => op(vec![(Path("id"), Pat)], None),
        ("POST", "/v1/personal-access-tokens/{id}/rotate") => {
            op(vec![(Path("id"), Pat)], Some(json!({})))
        }

        ("GET", "/v1/projects") => op(vec![], None),
        ("POST", "/v1/projects") => op(vec![], Some(json!({"name": "Matrix project"}))),
        ("GET" | "DELETE", "/v1/projects/{id}") => op(vec![(Path("id"), Project)], None),
        ("PATCH", "/v1/projects/{id}") => op(
            vec![(Path("id"), Project)],
            Some(json!({"name": "Renamed"})),
        ),
        ("GET", "/v1/projects/{id}/environments") => op(vec![(Path("id"), Project)], None),
        ("POST", "/v1/projects/{id}/environments") => op(
            vec![(Path("id"), Project)],
            Some(json!({"name": "staging-{n}"})),
        ),

        ("GET", "/v1/tokens/me") => op(vec![], None),

        ("GET", "/v1/webhooks") => op(vec![(Query("environment_id"), Environment)], None),
        ("POST", "/v1/webhooks") => op(
            vec![(Body("environment_id"), Environment)],
            Some(json!({"url": "http://127.0.0.1:9/matrix", "events": ["connection.created"]})),
        ),
        ("GET" | "DELETE", "/v1/webhooks/{id}") => op(vec![(Path("id"), Webhook)], None),
        ("PATCH", "/v1/webhooks/{id}") => {
            op(vec![(Path("id"), Webhook)], Some(json!({"enabled": true})))
        }
        ("GET", "/v1/webhooks/{id}/deliveries") => op(vec![(Path("id"), Webhook)], None),
        ("POST", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry") => op(
            vec![(Path("id"), Webhook), (Path("delivery_id"), Delivery)],
            None,
        ),
        ("POST", "/v1/webhooks/{id}/rotate-secret") => op(vec![(Path("id"), Webhook)], None),
        _ => None,
    }
}

/// Routes outside the matrix, each with the reason.
fn outside_the_matrix(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        // Public and operational: they name no tenant's resource.
        ("GET", "/.well-known/jwks.json")
            | ("GET", "/healthz")
            | ("GET", "/readyz")
            | ("GET", "/metrics")
            | ("GET", "/openapi.json")
            // The dashboard session of a signed-in user: no bearer credential.
            | ("GET", "/v1/session")
            // Takes a leaked token itself, not an id: whoever holds a token
            // may kill it (SPEC §11); tests/leaks.rs.
            | ("POST", "/v1/credentials/revoke")
    )
}

/// App-surface routes: the tenant is the Host; see `app_surface`.
fn on_app_surface(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("POST", "/v1/connect/tokens") | ("GET", "/v1/requirements/status")
    )
}

fn requirements() -> Value {
    json!([
        {"name": "api", "type": "connection",
         "spec": {"type": "connection", "data": {"type": API_KEY}}},
        {"name": "github", "type": "connection",
         "spec": {"type": "connection", "data": {"type": GITHUB}}},
        {"name": "mail", "type": "action_connector_account",
         "spec": {"type": "action_connector_account", "data": {"app_slug": "gmail"}}},
    ])
}

/// One environment's resources, made by the bootstrap key.
#[derive(Debug, Clone)]
struct Tenant {
    label: &'static str,
    ids: BTreeMap<Kind, String>,
    hostname: String,
}

impl Tenant {
    fn get(&self, kind: Kind) -> Option<&str> {
        self.ids.get(&kind).map(String::as_str)
    }

    fn id(&self, kind: Kind) -> &str {
        self.ids
            .get(&kind)
            .unwrap_or_else(|| panic!("{} has no {kind:?}", self.label))
    }
}

/// Records a failed expectation, so one run reports every cell that fails.
macro_rules! expect {
    ($failures:expr, $cond:expr, $($arg:tt)*) => {
        if !$cond {
            $failures.push(format!($($arg)*));
        }
    };
}

async fn ok(r: Reply, what: &str) -> Value {
    assert!(r.status.is_success(), "{what}: {} {}", r.status, r.text);
    r.body
}

/// Mints a connect token for `user` on `host` with `key`.
async fn mint(s: &TestServer, host: &str, key: &str, user: &str) -> String {
    let r = s
        .call_host(
            host,
            Method::POST,
            "/v1/connect/tokens",
            Some(key),
            Some(json!({"user_id": user})),
        )
        .await;
    ok(r, "mint").await["token"].as_str().unwrap().to_string()
}

/// Connects `user` to the app's API-key requirement; the connection id.
async fn connect_user(s: &TestServer, t: &Tenant, user: &str) -> String {
    let token = mint(s, &t.hostname, s.key(), user).await;
    let req = t.id(Kind::ApiKeyRequirement);
    ok(
        s.post(
            &format!("/v1/connect/requirements/{req}/credentials"),
            &token,
            json!({"type": API_KEY, "config": {"url": "https://api.example.com", "api_key": "sk-1"}}),
        )
        .await,
        "connect",
    )
    .await;
    let env = t.id(Kind::Environment);
    let view = ok(
        s.get(
            &format!("/v1/end-users/{user}?environment_id={env}"),
            s.key(),
        )
        .await,
        "end user",
    )
    .await;
    view["data"]["connections"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates every kind of resource in environment `env` of `project`.
async fn populate(s: &TestServer, label: &'static str, project: &str, env: &str) -> Tenant {
    let key = s.key().to_string();
    let mut ids = BTreeMap::new();
    ids.insert(Kind::Project, project.to_string());
    ids.insert(Kind::Environment, env.to_string());
    let (key_id, _) = s
        .create_key(
            &key,
            json!({"name": format!("{label} key"), "environment_id": env}),
        )
        .await;
    ids.insert(Kind::AccessKey, key_id);

    let slug = label.to_ascii_lowercase().replace('.', "-");
    let (app, hostname) = s
        .deploy_app(env, &format!("{label} app"), "private", requirements())
        .await;
    let versions = ok(
        s.get(&format!("/v1/apps/{app}/versions"), &key).await,
        "versions",
    )
    .await;
    let version = &versions["data"][0];
    ids.insert(Kind::Version, version["id"].as_str().unwrap().to_string());
    for r in version["requirements"].as_array().unwrap() {
        let kind = match r["name"].as_str().unwrap() {
            "api" => Kind::ApiKeyRequirement,
            "github" => Kind::OAuth2Requirement,
            _ => Kind::ActionRequirement,
        };
        ids.insert(kind, r["id"].as_str().unwrap().to_string());
    }
    ids.insert(Kind::App, app);

    for body in [
        json!({"name": "GitHub", "environment_id": env, "connection_type": GITHUB,
               "preset": "github", "client_id": "gh", "client_secret": "gh-secret-1"}),
        json!({"name": "Gmail", "environment_id": env, "app_slug": "gmail",
               "preset": "google", "client_id": "gm", "client_secret": "gm-secret-1"}),
    ] {
        let p = ok(s.post("/v1/oauth2-providers", &key, body).await, "provider").await;
        ids.insert(
            Kind::Provider,
            p["data"]["id"].as_str().unwrap().to_string(),
        );
    }

    // The webhook exists before the connection, so the connection's event
    // makes a delivery (to a closed port: an attempt that failed).
    let hook = ok(
        s.post(
            "/v1/webhooks",
            &key,
            json!({"environment_id": env, "url": "http://127.0.0.1:9/hook",
                   "events": ["connection.created"]}),
        )
        .await,
        "webhook",
    )
    .await;
    let hook = hook["data"]["id"].as_str().unwrap().to_string();
    ids.insert(Kind::Webhook, hook.clone());

    let mut tenant = Tenant {
        label,
        ids,
        hostname,
    };
    let user = format!("user-{slug}");
    let conn = connect_user(s, &tenant, &user).await;
    tenant.ids.insert(Kind::EndUser, user);
    tenant.ids.insert(Kind::Connection, conn);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let delivery = loop {
        let list = ok(
            s.get(&format!("/v1/webhooks/{hook}/deliveries"), &key)
                .await,
            "deliveries",
        )
        .await;
        if let Some(id) = list["data"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery attempt for {label}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tenant.ids.insert(Kind::Delivery, delivery);
    tenant
}

/// A credential of tenant `own`, and the tenants it must not reach.
struct Credential {
    label: &'static str,
    token: String,
    kind: CredentialKind,
    reach: Reach,
    own: Tenant,
    foreign: Vec<Tenant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Project,
    Environment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredentialKind {
    AccessKey,
    Pat,
    ConnectToken,
}

/// Whether the credential is refused (403) even on its own resources,
/// by what it is or how far it reaches, as SPEC §3, §4 and §6 say: PATs
/// and member management are for users only, and members for
/// organization-wide credentials; connect tokens have their own routes
/// and nothing else; creating a project changes the organization, and
/// changing a project or an environment's settings needs the whole
/// project. Everything else must succeed.
fn forbidden_regardless(cred: &Credential, method: &Method, path: &str) -> bool {
    let member_write = path.starts_with("/v1/organization/members") && *method != Method::GET;
    let user_only = path.starts_with("/v1/personal-access-tokens") || member_write;
    let connect_route = path.starts_with("/v1/connect/");
    let by_kind = match cred.kind {
        CredentialKind::AccessKey => user_only || connect_route,
        CredentialKind::Pat => connect_route,
        CredentialKind::ConnectToken => !connect_route,
    };
    let organization_level = member_write || (path == "/v1/projects" && *method == Method::POST);
    let project_level = (path.starts_with("/v1/projects/{id}") && *method != Method::GET)
        || (path == "/v1/environments/{id}" && *method == Method::PATCH);
    let by_reach = match cred.reach {
        Reach::Project => organization_level,
        Reach::Environment => organization_level || project_level,
    };
    by_kind || by_reach
}

/// Fresh resources for controls that destroy what they name.
async fn fresh(s: &TestServer, t: &Tenant, kind: Kind, n: usize) -> BTreeMap<Kind, String> {
    let key = s.key().to_string();
    let env = t.id(Kind::Environment).to_string();
    let mut ids = t.ids.clone();
    match kind {
        Kind::AccessKey => {
            let (id, _) = s
                .create_key(&key, json!({"name": "fresh", "environment_id": env}))
                .await;
            ids.insert(kind, id);
        }
        Kind::Pat => {
            let r = s
                .post(
                    "/v1/personal-access-tokens",
                    &s.boot().pat,
                    json!({"name": "fresh", "environment_id": env}),
                )
                .await;
            ids.insert(
                kind,
                ok(r, "fresh pat").await["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        Kind::Member => {
            let r = s
                .post(
                    "/v1/organization/members",
                    &s.boot().pat,
                    json!({"email": format!("fresh{n}@example.com"), "role": "viewer"}),
                )
                .await;
            ids.insert(
                kind,
                ok(r, "fresh member").await["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        Kind::App => {
            let (app, _) = s
                .deploy_app(&env, &format!("Fresh {n}"), "private", requirements())
                .await;
            ids.insert(kind, app);
        }
        Kind::EndUser | Kind::Connection => {
            let user = format!("fresh-{n}");
            let conn = connect_user(s, t, &user).await;
            ids.insert(Kind::EndUser, user);
            ids.insert(Kind::Connection, conn);
        }
        Kind::Webhook => {
            let r = s
                .post(
                    "/v1/webhooks",
                    &key,
                    json!({"environment_id": env, "url": "http://127.0.0.1:9/fresh",
                           "events": ["connection.created"]}),
                )
                .await;
            ids.insert(
                kind,
                ok(r, "fresh webhook").await["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        Kind::Provider => {
            let r = s
                .post(
                    "/v1/oauth2-providers",
                    &key,
                    json!({"name": "Fresh", "environment_id": env, "app_slug": format!("fresh-{n}"),
                           "preset": "slack", "client_id": "f", "client_secret": "fresh-secret-1"}),
                )
                .await;
            ids.insert(
                kind,
                ok(r, "fresh provider").await["data"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        _ => {}
    }
    ids
}

/// Builds and sends one request with `ids` filling its slots.
async fn send(
    s: &TestServer,
    cred: &Credential,
    method: &Method,
    template: &str,
    op: &Operation,
    ids: &BTreeMap<Place, String>,
) -> Reply {
    let mut path = template.to_string();
    let mut query = Vec::new();
    // `{n}` in a body makes names unique per request.
    let mut body = op.body.as_ref().map(|b| {
        let n = ulid::Ulid::new().to_string().to_ascii_lowercase();
        serde_json::from_str::<Value>(&b.to_string().replace("{n}", &n[20..])).unwrap()
    });
    for (place, value) in ids {
        match place {
            Place::Path(name) => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                path = path.replace(&format!("{{{name}}}"), &encoded);
            }
            Place::Query(name) => query.push(format!("{name}={value}")),
            Place::Body(name) => {
                body.as_mut().expect("a body slot needs a body")[*name] = json!(value);
            }
        }
    }
    assert!(
        !path.contains('{'),
        "{method} {template}: a path parameter the matrix does not fill"
    );
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    s.call(method.clone(), &path, Some(&cred.token), body).await
}

// `Place` keys a map: order by the parameter's name.
impl PartialOrd for Place {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Place {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |p: &Place| match p {
            Place::Path(n) => (0, *n),
            Place::Query(n) => (1, *n),
            Place::Body(n) => (2, *n),
        };
        key(self).cmp(&key(other))
    }
}

/// The part of an answer that must not tell a foreign resource from a
/// missing one.
fn verdict(r: &Reply) -> (StatusCode, Value) {
    (r.status, r.body["error"].clone())
}

/// What the matrix has done so far.
#[derive(Default)]
struct Tally {
    /// Makes fresh names unique.
    counter: usize,
    /// Foreign requests compared.
    checked: usize,
    failures: Vec<String>,
}

/// Every id a tenant owns, to look for in answers that list things.
fn all_ids(t: &Tenant) -> Vec<&str> {
    t.ids
        .iter()
        // Users and their PATs are the organization's, not a tenant's.
        .filter(|(k, _)| !matches!(k, Kind::EndUser | Kind::Member | Kind::Pat))
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn check_operation(
    s: &TestServer,
    cred: &Credential,
    method: &Method,
    path: &str,
    op: &Operation,
    tally: &mut Tally,
) {
    let Tally {
        counter,
        checked,
        failures,
    } = tally;
    let fill = |ids: &BTreeMap<Kind, String>| -> BTreeMap<Place, String> {
        op.slots
            .iter()
            .map(|(place, kind)| (*place, ids[kind].clone()))
            .collect()
    };
    let what = |variant: &str| format!("{} {method} {path} ({variant})", cred.label);

    // Foreign resources, one slot at a time and all at once, against ids
    // that exist nowhere in the same slots.
    if !op.slots.is_empty() {
        for foreign in &cred.foreign {
            let mut variants: Vec<Vec<usize>> = (0..op.slots.len()).map(|i| vec![i]).collect();
            if op.slots.len() > 1 {
                variants.push((0..op.slots.len()).collect());
            }
            for variant in variants {
                let mut theirs = fill(&cred.own.ids);
                let mut nowhere = theirs.clone();
                let mut complete = true;
                for &i in &variant {
                    let (place, kind) = op.slots[i];
                    let Some(id) = foreign.get(kind) else {
                        // Not foreign at this level (A.live's project is A).
                        complete = false;
                        continue;
                    };
                    theirs.insert(place, id.to_string());
                    nowhere.insert(place, kind.nonexistent());
                }
                if !complete {
                    continue;
                }
                // End users are names within an environment: another
                // environment's name in one's own environment is only a
                // name that is not there, which may answer like any
                // missing user (an empty list, an idempotent 204).
                let names_only = variant.iter().all(|&i| op.slots[i].1 == Kind::EndUser);
                let label = format!(
                    "{}'s {:?}",
                    foreign.label,
                    variant.iter().map(|&i| op.slots[i].0).collect::<Vec<_>>()
                );
                let a = send(s, cred, method, path, op, &theirs).await;
                let b = send(s, cred, method, path, op, &nowhere).await;
                expect!(
                    failures,
                    names_only || !a.status.is_success(),
                    "{}: reached a foreign resource: {} {}",
                    what(&label),
                    a.status,
                    a.text
                );
                expect!(
                    failures,
                    names_only || matches!(a.status.as_u16(), 400 | 403 | 404),
                    "{}: {} {}",
                    what(&label),
                    a.status,
                    a.text
                );
                if !names_only && matches!(*method, Method::GET | Method::DELETE) {
                    expect!(
                        failures,
                        matches!(a.status.as_u16(), 403 | 404),
                        "{}: {} {}",
                        what(&label),
                        a.status,
                        a.text
                    );
                }
                expect!(
                    failures,
                    verdict(&a) == verdict(&b),
                    "{}: a foreign resource answers differently from a missing one: {} {} vs {} {}",
                    what(&label),
                    a.status,
                    a.text,
                    b.status,
                    b.text
                );
                *checked += 1;
            }
        }
    }

    // The same request on the credential's own resources succeeds.
    let destroyed = op
        .slots
        .first()
        .filter(|_| destroys(method, path))
        .map(|(_, kind)| *kind);
    if destroyed == Some(Kind::Project) {
        // Deleting one's own project ends the matrix; tests/connect_security.rs
        // covers what it cuts off.
        return;
    }
    let own_ids = match destroyed {
        Some(kind) => {
            *counter += 1;
            fresh(s, &cred.own, kind, *counter).await
        }
        None => cred.own.ids.clone(),
    };
    let own = send(s, cred, method, path, op, &fill(&own_ids)).await;
    if forbidden_regardless(cred, method, path) {
        expect!(
            failures,
            own.status == StatusCode::FORBIDDEN,
            "{}: expected 403: {} {}",
            what("own"),
            own.status,
            own.text
        );
    } else {
        expect!(
            failures,
            own.status.is_success(),
            "{}: the control on its own resources failed: {} {}",
            what("own"),
            own.status,
            own.text
        );
        // What it lists or shows names nothing of another tenant.
        for foreign in &cred.foreign {
            for id in all_ids(foreign) {
                expect!(
                    failures,
                    !own.text.contains(id),
                    "{}: the answer names {}'s {id}: {}",
                    what("own"),
                    foreign.label,
                    own.text
                );
            }
        }
    }
}

/// `POST /v1/connect/tokens` and `GET /v1/requirements/status` on another
/// tenant's app hostname: 403 for a key (SPEC §6), never an answer.
async fn check_app_surface(
    s: &TestServer,
    cred: &Credential,
    method: &Method,
    path: &str,
    failures: &mut Vec<String>,
) {
    let (query, body) = if *method == Method::POST {
        (String::new(), Some(json!({"user_id": "matrix-user"})))
    } else {
        (format!("?user_id={}", cred.own.id(Kind::EndUser)), None)
    };
    let path_q = format!("{path}{query}");
    let own = s
        .call_host(
            &cred.own.hostname,
            method.clone(),
            &path_q,
            Some(&cred.token),
            body.clone(),
        )
        .await;
    match cred.kind {
        CredentialKind::AccessKey => expect!(
            failures,
            own.status.is_success(),
            "{} {method} {path} own: {}",
            cred.label,
            own.text
        ),
        _ => expect!(
            failures,
            own.status == StatusCode::FORBIDDEN,
            "{} {path}: {}",
            cred.label,
            own.text
        ),
    }
    for foreign in &cred.foreign {
        let r = s
            .call_host(
                &foreign.hostname,
                method.clone(),
                &path_q,
                Some(&cred.token),
                body.clone(),
            )
            .await;
        expect!(
            failures,
            r.status == StatusCode::FORBIDDEN && r.body["error"]["code"] == "forbidden",
            "{} {method} {path} on {}'s app: {} {}",
            cred.label,
            foreign.label,
            r.status,
            r.text
        );
    }
}

async fn a_tenant_cannot_reach_another_tenants_resources(backend: Backend) {
    let s = TestServer::start_with(TestData::new(backend).await, |c| {
        c.allow_private_webhook_targets = true;
    })
    .await;
    let b = s.boot().clone();

    let project_b = ok(
        s.post("/v1/projects", &b.key, json!({"name": "Project B"}))
            .await,
        "project B",
    )
    .await;
    let project_b_id = project_b["data"]["id"].as_str().unwrap().to_string();
    let b_sandbox = common::environment_id(&project_b["data"], "sandbox");

    let a_sandbox = populate(&s, "A.sandbox", &b.project_id, &b.sandbox_id).await;
    let a_live = populate(&s, "A.live", &b.project_id, &b.live_id).await;
    let b_sandbox = populate(&s, "B.sandbox", &project_b_id, &b_sandbox).await;
    // Members and PATs belong to users: another user's are "foreign".
    let (_, other_pat) = s.member_with_pat("other@example.com", "admin").await;
    let other_pat_id = ok(s.get("/v1/tokens/me", &other_pat).await, "me").await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let with_user_of = |t: &Tenant| {
        let mut t = t.clone();
        t.ids.insert(Kind::Pat, other_pat_id.clone());
        t.ids.insert(Kind::Member, b.owner_id.clone());
        t
    };

    let (_, project_key) = s
        .create_key(
            &b.key,
            json!({"name": "A project", "project_id": b.project_id, "scopes": EVERY_SCOPE}),
        )
        .await;
    let (_, env_key) = s
        .create_key(
            &b.key,
            json!({"name": "A sandbox", "environment_id": b.sandbox_id, "scopes": EVERY_SCOPE}),
        )
        .await;
    let env_pat = ok(
        s.post(
            "/v1/personal-access-tokens",
            &b.pat,
            json!({"name": "A sandbox", "environment_id": b.sandbox_id, "scopes": EVERY_SCOPE}),
        )
        .await,
        "pat",
    )
    .await["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // A.live shares project A with the environment-scoped credentials.
    let sibling = |t: &Tenant| {
        let mut t = with_user_of(t);
        t.ids.remove(&Kind::Project);
        t
    };
    let mut own = a_sandbox.clone();
    let (own_pat_id, _) = {
        let r = ok(s.get("/v1/tokens/me", &env_pat).await, "me").await;
        (r["data"]["id"].as_str().unwrap().to_string(), ())
    };
    own.ids.insert(Kind::Pat, own_pat_id);
    own.ids.insert(Kind::Member, b.owner_id.clone());

    let credentials = vec![
        Credential {
            label: "project A key",
            token: project_key,
            kind: CredentialKind::AccessKey,
            reach: Reach::Project,
            own: own.clone(),
            foreign: vec![with_user_of(&b_sandbox)],
        },
        Credential {
            label: "A.sandbox key",
            token: env_key,
            kind: CredentialKind::AccessKey,
            reach: Reach::Environment,
            own: own.clone(),
            foreign: vec![sibling(&a_live), with_user_of(&b_sandbox)],
        },
        Credential {
            label: "A.sandbox PAT",
            token: env_pat,
            kind: CredentialKind::Pat,
            reach: Reach::Environment,
            own: own.clone(),
            foreign: vec![sibling(&a_live), with_user_of(&b_sandbox)],
        },
    ];

    let document = serde_json::to_value(gatehouse::http::openapi_document()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue;
            };
            if matches!(
                method,
                Method::GET | Method::POST | Method::PATCH | Method::PUT | Method::DELETE
            ) {
                routes.push((method, path.clone()));
            }
        }
    }
    assert!(routes.len() > 40, "the route table looks empty: {routes:?}");
    // Session routes last: `DELETE /v1/connect/session` ends the token.
    routes.sort_by_key(|(m, p)| {
        (
            p == "/v1/connect/session" && *m == Method::DELETE,
            p.clone(),
        )
    });

    let mut tally = Tally::default();
    for (method, path) in &routes {
        if outside_the_matrix(method, path) {
            continue;
        }
        if on_app_surface(method, path) {
            for cred in &credentials {
                check_app_surface(&s, cred, method, path, &mut tally.failures).await;
            }
            continue;
        }
        let op = describe(method, path)
            .unwrap_or_else(|| panic!("{method} {path}: add the route to the isolation matrix"));
        for (place, _) in &op.slots {
            if let Place::Path(name) = place {
                assert!(
                    path.contains(&format!("{{{name}}}")),
                    "{path} has no {{{name}}}"
                );
            }
        }
        let params = path.matches('{').count();
        let described = op
            .slots
            .iter()
            .filter(|(p, _)| matches!(p, Place::Path(_)))
            .count();
        assert_eq!(
            params, described,
            "{method} {path}: a path parameter the matrix does not know"
        );

        // A fresh connect token of the own app, for a user of its own, per
        // route: some routes end or change what the token holds.
        tally.counter += 1;
        let connect = Credential {
            label: "A.sandbox connect token",
            token: mint(
                &s,
                &own.hostname,
                &b.key,
                &format!("matrix-{}", tally.counter),
            )
            .await,
            kind: CredentialKind::ConnectToken,
            reach: Reach::Environment,
            own: own.clone(),
            foreign: vec![sibling(&a_live), with_user_of(&b_sandbox)],
        };
        if path.starts_with("/v1/connect/requirements/") && *method == Method::DELETE {
            // Disconnecting needs a connection to disconnect.
            let req = own.id(Kind::ApiKeyRequirement);
            ok(
                s.post(
                    &format!("/v1/connect/requirements/{req}/credentials"),
                    &connect.token,
                    json!({"type": API_KEY, "config": {"url": "https://api.example.com", "api_key": "sk-2"}}),
                )
                .await,
                "connect before disconnect",
            )
            .await;
        }
        for cred in credentials.iter().chain(std::iter::once(&connect)) {
            check_operation(&s, cred, method, path, &op, &mut tally).await;
        }
    }
    assert!(
        tally.failures.is_empty(),
        "{} failures:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
    assert!(
        tally.checked > 150,
        "only {} foreign requests were checked",
        tally.checked
    );
    eprintln!(
        "isolation: {} routes, {} foreign requests",
        routes.len(),
        tally.checked
    );
}
