//! Property tests of client input through the real router, in-process
//! (`tower::ServiceExt::oneshot` on `gatehouse::http::router`):
//!
//! - the JSON body of every POST, PUT and PATCH route of the OpenAPI
//!   document (so a new route is covered as soon as it is registered),
//!   with path parameters filled by real ids, sent arbitrary JSON, JSON
//!   text no serializer writes (duplicate keys, numbers past every type,
//!   deep nesting), objects built from the route's schema, and mutations
//!   of a valid body, on SQLite and PostgreSQL (which refuses some text
//!   SQLite stores);
//! - the query string and path parameters of every GET and DELETE route,
//!   on both backends;
//! - the `Authorization`, `Host`, `Cookie` and `X-Request-Id` headers, and
//!   the sign-in and sign-out form posts, on SQLite.
//!
//! Whatever is sent: never a 5xx, never a panic (and `/healthz` still
//! answers), every error in exactly the SPEC §2 envelope, and a body that
//! is not JSON, or JSON that is not an object, a 400 on `input`. Each
//! property runs from a fixed seed (`PROPTEST_RNG_SEED` and
//! `PROPTEST_CASES` override), so a run is repeatable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/arbitrary_json.rs"]
mod arbitrary_json;
mod common;

use std::collections::BTreeSet;

use arbitrary_json::{any_json, nested, number, odd_string, schema_object, typed, Json};
use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode},
    Router,
};
use common::{Backend, TestData, TestServer};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner},
};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Cases per route (`PROPTEST_CASES` overrides): with about twenty-five
/// body routes this keeps the file well under a minute in a debug build.
const CASES: u32 = 256;

/// The default body limit (SPEC §2: 64 KiB).
const BODY_LIMIT: usize = 64 * 1024;

/// POST, PUT and PATCH routes that take no body, and why. Any other such
/// route without a JSON body schema fails the test, and so does one listed
/// here that has gained a schema.
const NO_BODY: &[(&str, &str)] = &[
    // Revokes every connect token of the end user named in the path.
    ("post", "/v1/end-users/{user_id}/connect-tokens/revoke"),
    // The server generates the new secret.
    ("post", "/v1/webhooks/{id}/rotate-secret"),
    // Sends the delivery in the path again.
    ("post", "/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
    // The requirement in the path is the whole input; the answer is a URL.
    ("post", "/v1/connect/requirements/{id}/oauth2/authorize"),
    (
        "post",
        "/v1/connect/requirements/{id}/action-connector/authorize",
    ),
];

const OPENAI: &str = "dynamiq.connections.OpenAI";

/// Who calls a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// The bootstrap access key, on the surface app's hostname.
    App,
    /// A connect token for the surface app.
    ConnectToken,
    /// The bootstrap owner's PAT: every scope, and a user.
    Bearer,
    /// Nobody (the route needs no credential).
    Anonymous,
}

/// One route with a body, from the OpenAPI document.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    path: String,
    caller: Caller,
    /// The request body's schema with every `$ref` inlined; `None` for a
    /// route of [`NO_BODY`].
    schema: Option<Value>,
}

/// The server, the router in front of it, and the ids the paths are
/// filled with.
struct Fixture {
    /// Kept running (its background tasks) while the properties run.
    _server: TestServer,
    router: Router,
    pat: String,
    key: String,
    connect_token: String,
    app_host: String,
    sandbox: String,
    /// Resources only these properties touch, so nothing they change
    /// (a rotation, a new hostname, a role) affects the callers above.
    target_app: String,
    target_version: String,
    project: String,
    environment: String,
    key_id: String,
    pat_id: String,
    member: String,
    webhook: String,
    provider: String,
    requirement: String,
}

fn id_of(r: &common::Reply) -> String {
    assert!(r.status.is_success(), "{}", r.text);
    r.body["data"]["id"].as_str().unwrap().to_string()
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let data = TestData::new(backend).await;
        let server = TestServer::start_with(data, |c| {
            // Thousands of requests from one caller: a 429 would end each
            // property at the rate limit instead of in the handlers.
            c.rate_limits.enabled = false;
            // No DNS lookups of generated webhook hosts when saving.
            c.allow_private_webhook_targets = true;
        })
        .await;
        let s = &server;
        let pat = s.boot().pat.clone();
        let key = s.boot().key.clone();
        let sandbox = s.boot().sandbox_id.clone();
        let requirements = json!([{"name": "openai", "type": "connection",
            "spec": {"type": "connection", "data": {"type": OPENAI}}}]);
        let (_, app_host) = s
            .deploy_app(&sandbox, "Bodies Surface", "private", requirements.clone())
            .await;
        let minted = s
            .call_host(
                &app_host,
                Method::POST,
                "/v1/connect/tokens",
                Some(&key),
                Some(json!({"user_id": "bodies-user"})),
            )
            .await;
        assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.text);
        let connect_token = minted.body["token"].as_str().unwrap().to_string();
        let reqs = s.get("/v1/connect/requirements", &connect_token).await;
        let requirement = reqs.body["data"][0]["id"].as_str().unwrap().to_string();

        let target_app = id_of(
            &s.post(
                "/v1/apps",
                &pat,
                json!({"name": "Bodies Target", "environment_id": sandbox}),
            )
            .await,
        );
        let target_version = id_of(
            &s.post(
                &format!("/v1/apps/{target_app}/versions"),
                &pat,
                json!({"requirements": requirements}),
            )
            .await,
        );
        let created = s
            .post("/v1/projects", &pat, json!({"name": "Bodies"}))
            .await;
        let project = id_of(&created);
        let environment = created.body["data"]["environments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (key_id, _) = s.create_key(&pat, json!({"name": "rotated"})).await;
        let pat_id = id_of(
            &s.post(
                "/v1/personal-access-tokens",
                &pat,
                json!({"name": "rotated"}),
            )
            .await,
        );
        let (member, _) = s
            .member_with_pat("bodies-member@example.com", "developer")
            .await;
        let webhook = id_of(
            &s.post(
                "/v1/webhooks",
                &pat,
                json!({"environment_id": sandbox, "url": "https://hooks.example.invalid/in",
                       "events": ["connection.created"]}),
            )
            .await,
        );
        let provider = id_of(
            &s.post(
                "/v1/oauth2-providers",
                &pat,
                json!({"name": "google", "environment_id": sandbox, "preset": "google",
                       "connection_type": "dynamiq.connections.GoogleOAuth2",
                       "client_id": "bodies", "client_secret": "bodies-client-secret"}),
            )
            .await,
        );
        let router = gatehouse::http::router(server.state.clone());
        Self {
            router,
            pat,
            key,
            connect_token,
            app_host,
            sandbox,
            target_app,
            target_version,
            project,
            environment,
            key_id,
            pat_id,
            member,
            webhook,
            provider,
            requirement,
            _server: server,
        }
    }

    /// `path` with each `{param}` replaced by the fixture's id for the
    /// resource named before it, or a well-formed id of nothing.
    fn fill(&self, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').collect();
        segments
            .iter()
            .enumerate()
            .map(|(i, seg)| {
                if !seg.starts_with('{') {
                    return seg.to_string();
                }
                let resource = if i > 0 { segments[i - 1] } else { "" };
                match (resource, *seg) {
                    ("access-keys", _) => self.key_id.clone(),
                    ("personal-access-tokens", _) => self.pat_id.clone(),
                    ("apps", _) => self.target_app.clone(),
                    ("projects", _) => self.project.clone(),
                    ("environments", _) => self.environment.clone(),
                    ("members", _) => self.member.clone(),
                    ("webhooks", _) => self.webhook.clone(),
                    ("oauth2-providers", _) => self.provider.clone(),
                    ("requirements", _) => self.requirement.clone(),
                    // Not the connect token's user, whose tokens must live.
                    ("end-users", _) => "someone-else".into(),
                    ("deliveries", _) => "whd_00000000000000000000000000".into(),
                    _ => "nothing_00000000000000000000000000".into(),
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A body the route accepts, to mutate from; for a route without one
    /// here, a value of each property's type.
    fn seed(&self, route: &Route) -> Value {
        let m = route.method.as_str();
        match (m, route.path.as_str()) {
            ("POST", "/v1/access-keys") | ("POST", "/v1/personal-access-tokens") => {
                json!({"name": "ci", "scopes": ["keys:read"], "expires_at": "2099-01-01T00:00:00Z"})
            }
            ("POST", p) if p.ends_with("/rotate") => json!({"grace_period_seconds": 3600}),
            ("POST", "/v1/projects") => json!({"name": "Another"}),
            ("PATCH", "/v1/projects/{id}") => json!({"name": "Renamed"}),
            ("POST", "/v1/projects/{id}/environments") => json!({"name": "staging"}),
            ("PATCH", "/v1/environments/{id}") => {
                json!({"rate_limit": {"limit": 100, "window_seconds": 60}})
            }
            ("POST", "/v1/organization/members") => {
                json!({"email": "new@example.com", "role": "viewer"})
            }
            ("PATCH", "/v1/organization/members/{id}") => json!({"role": "viewer"}),
            ("POST", "/v1/apps") => json!({"name": "More", "environment_id": self.sandbox,
                "access_type": "public", "allowed_redirect_origins": ["https://app.example.invalid"]}),
            ("PATCH", "/v1/apps/{id}") => json!({"name": "Renamed", "access_type": "private",
                "hostname": "renamed.example.invalid", "allowed_redirect_origins": []}),
            ("POST", "/v1/apps/{id}/versions") => json!({"requirements": [
                {"name": "openai", "type": "connection", "title": "Key", "description": "d",
                 "spec": {"type": "connection", "data": {"type": OPENAI}}}]}),
            ("POST", "/v1/apps/{id}/deployments") => json!({"version_id": self.target_version}),
            ("POST", "/v1/oauth2-providers") => {
                json!({"name": "gh", "environment_id": self.sandbox,
                "preset": "github", "connection_type": "dynamiq.connections.GitHubOAuth2",
                "client_id": "c", "client_secret": "s", "scopes": ["read:user"],
                "extra_authorize_params": {"allow_signup": "false"}})
            }
            ("PATCH", "/v1/oauth2-providers/{id}") => {
                json!({"client_id": "c2", "scopes": ["openid"], "client_auth": "client_secret_post"})
            }
            ("POST", "/v1/webhooks") => json!({"environment_id": self.sandbox,
                "url": "https://hooks.example.invalid/in", "events": ["connection.created"],
                "description": "d"}),
            ("PATCH", "/v1/webhooks/{id}") => json!({"url": "https://hooks.example.invalid/2",
                "events": ["access_key.revoked"], "enabled": true, "description": "e"}),
            ("POST", "/v1/credentials/revoke") => json!({"tokens": ["dyn_not_a_real_token"]}),
            ("POST", "/v1/connect/tokens") => json!({"user_id": "customer-1", "ttl_seconds": 600,
                "redirect_url": "https://app.example.invalid/done"}),
            ("POST", "/v1/connect/requirements/{id}/credentials") => {
                json!({"type": OPENAI, "config": {"api_key": "sk-test-123456"}})
            }
            _ => Value::Object(
                properties(route)
                    .into_iter()
                    .map(|(name, schema)| {
                        let v = match arbitrary_json::schema_type(&schema).as_deref() {
                            Some("string") => json!("x"),
                            Some("integer") | Some("number") => json!(1),
                            Some("boolean") => json!(true),
                            Some("array") => json!([]),
                            _ => json!({}),
                        };
                        (name, v)
                    })
                    .collect(),
            ),
        }
    }

    /// Sends one request through the router: (status, headers, body).
    async fn send(
        &self,
        method: Method,
        path: &str,
        caller: Caller,
        headers: &[(&str, HeaderValue)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(path);
        let bearer = match caller {
            Caller::App => {
                req = req.header(header::HOST, &self.app_host);
                Some(&self.key)
            }
            Caller::ConnectToken => Some(&self.connect_token),
            Caller::Bearer => Some(&self.pat),
            Caller::Anonymous => None,
        };
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, value.clone());
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    /// `/healthz` still answers 200.
    async fn healthy(&self) {
        let (status, _, body) = self
            .send(Method::GET, "/healthz", Caller::Anonymous, &[], Vec::new())
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
}

/// Whether [`Fixture::seed`] has a hand-written body for the route (one
/// it must accept), rather than one made from the schema.
fn hand_written(route: &Route) -> bool {
    SEEDED.contains(&(route.method.as_str(), route.path.as_str()))
        || (route.method == Method::POST && route.path.ends_with("/rotate"))
}

/// The routes [`Fixture::seed`] knows.
const SEEDED: &[(&str, &str)] = &[
    ("POST", "/v1/access-keys"),
    ("POST", "/v1/personal-access-tokens"),
    ("POST", "/v1/projects"),
    ("PATCH", "/v1/projects/{id}"),
    ("POST", "/v1/projects/{id}/environments"),
    ("PATCH", "/v1/environments/{id}"),
    ("POST", "/v1/organization/members"),
    ("PATCH", "/v1/organization/members/{id}"),
    ("POST", "/v1/apps"),
    ("PATCH", "/v1/apps/{id}"),
    ("POST", "/v1/apps/{id}/versions"),
    ("POST", "/v1/apps/{id}/deployments"),
    ("POST", "/v1/oauth2-providers"),
    ("PATCH", "/v1/oauth2-providers/{id}"),
    ("POST", "/v1/webhooks"),
    ("PATCH", "/v1/webhooks/{id}"),
    ("POST", "/v1/credentials/revoke"),
    ("POST", "/v1/connect/tokens"),
    ("POST", "/v1/connect/requirements/{id}/credentials"),
];

/// `schema` with every `$ref` replaced by what it names and every
/// `oneOf`/`anyOf` of null and one schema replaced by that schema.
fn inline(doc: &Value, schema: &Value, depth: usize) -> Value {
    assert!(depth < 16, "schema nesting too deep: {schema}");
    match schema {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let name = r.rsplit('/').next().unwrap();
                return inline(doc, &doc["components"]["schemas"][name], depth + 1);
            }
            for key in ["oneOf", "anyOf"] {
                if let Some(alts) = o.get(key).and_then(Value::as_array) {
                    if let Some(one) = alts.iter().find(|a| a["type"] != "null") {
                        return inline(doc, one, depth + 1);
                    }
                }
            }
            Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), inline(doc, v, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| inline(doc, v, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// A route's body properties: (name, schema).
fn properties(route: &Route) -> Vec<(String, Value)> {
    route
        .schema
        .as_ref()
        .and_then(|s| s["properties"].as_object())
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The paths served on an app's hostname.
fn app_paths() -> BTreeSet<String> {
    let (_, doc) = gatehouse::http::api::app_routes().split_for_parts();
    let doc = serde_json::to_value(doc).unwrap();
    doc["paths"].as_object().unwrap().keys().cloned().collect()
}

/// Every route that takes a body by method, from the OpenAPI document;
/// fails on one without a schema that [`NO_BODY`] does not excuse.
fn body_routes() -> Vec<Route> {
    let doc = serde_json::to_value(gatehouse::http::openapi_document()).unwrap();
    let app = app_paths();
    let mut routes = Vec::new();
    let mut unexplained = Vec::new();
    let mut stale = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let schema = op
                .pointer("/requestBody/content/application~1json/schema")
                .map(|s| inline(&doc, s, 0));
            let excused = NO_BODY.contains(&(method, path.as_str()));
            match (&schema, excused) {
                (None, false) => unexplained.push(format!("{method} {path}")),
                (Some(_), true) => stale.push(format!("{method} {path}")),
                _ => {}
            }
            let caller = caller_of(&app, path, op);
            routes.push(Route {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                caller,
                schema,
            });
        }
    }
    assert!(
        unexplained.is_empty(),
        "routes without a JSON body schema: give them one, or add them to NO_BODY with the reason: {unexplained:?}"
    );
    assert!(
        stale.is_empty(),
        "NO_BODY lists routes that now take a body: {stale:?}"
    );
    routes
}

/// The SPEC §2 `code` and `message` of an error status.
fn spec_error(status: StatusCode) -> Option<(&'static str, &'static str)> {
    Some(match status.as_u16() {
        400 => ("bad_request", "Bad Request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not_found", "Not Found"),
        405 => ("method_not_allowed", "Method Not Allowed"),
        409 => ("conflict", "Conflict"),
        413 => ("payload_too_large", "Payload Too Large"),
        415 => ("unsupported_media_type", "Unsupported Media Type"),
        429 => ("rate_limited", "Too Many Requests"),
        431 => ("header_too_large", "Request Header Fields Too Large"),
        _ => return None,
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// Asserts that a response is not a 5xx and, when it is an error, is the
/// SPEC §2 envelope exactly. Returns the parsed body.
fn check_answer(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, TestCaseError> {
    let text = String::from_utf8_lossy(body);
    prop_assert!(!status.is_server_error(), "{status}: {text}");
    prop_assert!(
        headers.contains_key("x-request-id"),
        "{status} without x-request-id"
    );
    if status.is_success() || status.is_redirection() {
        if !is_json(headers) || body.is_empty() {
            return Ok(Value::Null);
        }
        let parsed: Result<Value, _> = serde_json::from_slice(body);
        prop_assert!(
            parsed.is_ok(),
            "{status} with a body that is not JSON: {text}"
        );
        return Ok(parsed.unwrap());
    }
    let Some((code, message)) = spec_error(status) else {
        return Err(TestCaseError::fail(format!(
            "{status} is not a SPEC §2 status: {text}"
        )));
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    prop_assert!(
        content_type.is_some_and(|v| v.starts_with("application/json")),
        "{status} with content type {content_type:?}"
    );
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{status} body is not JSON ({e}): {text}")))?;
    let top: Vec<&String> = v
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    prop_assert_eq!(top, vec!["error"], "not the envelope: {}", text);
    let err = v["error"].as_object().unwrap();
    prop_assert!(
        err.keys()
            .all(|k| matches!(k.as_str(), "code" | "message" | "details")),
        "unexpected keys in {}",
        text
    );
    prop_assert_eq!(&err["code"], code, "{}", text);
    prop_assert_eq!(&err["message"], message, "{}", text);
    if let Some(details) = err.get("details") {
        let details = details.as_object();
        prop_assert!(
            details.is_some_and(|d| !d.is_empty()),
            "details must be a non-empty object: {}",
            text
        );
        prop_assert!(
            details
                .unwrap()
                .iter()
                .all(|(k, m)| !k.is_empty() && m.as_str().is_some_and(|m| !m.is_empty())),
            "details must map fields to messages: {}",
            text
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        prop_assert_eq!(
            headers
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
    Ok(v)
}

/// What the body alone decides, checked on top of [`check_answer`]: over
/// the limit is 413; not JSON, or JSON that is not an object, is 400 on
/// `input`.
fn check_body_rules(body: &[u8], status: StatusCode, answer: &Value) -> Result<(), TestCaseError> {
    if body.len() > BODY_LIMIT {
        prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        return Ok(());
    }
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let json = serde_json::from_slice::<Value>(body);
    let not_an_object = first.is_some_and(|b| *b != b'{');
    if not_an_object || (first.is_some() && json.is_err()) {
        prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
    }
    if not_an_object {
        prop_assert!(
            answer["error"]["details"]["input"].is_string(),
            "400 without details.input: {}",
            answer
        );
    }
    Ok(())
}

/// The bodies sent to `route`, as bytes.
fn bodies(route: &Route, seed: &Value) -> BoxedStrategy<Vec<u8>> {
    let seed_json = Json::from_value(seed);
    let seed_text = seed_json.render().into_bytes();
    let seed_fields: Vec<(String, Json)> = match &seed_json {
        Json::Obj(fields) => fields.clone(),
        _ => Vec::new(),
    };
    let props = properties(route);
    let mut names: Vec<String> = props.iter().map(|(n, _)| n.clone()).collect();
    names.extend(seed_fields.iter().map(|(n, _)| n.clone()));
    names.push("id".into());
    names.sort();
    names.dedup();

    let text = seed_text.clone();
    let truncated =
        (0..seed_text.len().max(1)).prop_map(move |i| text[..i.min(text.len())].to_vec());
    let text = seed_text.clone();
    let spliced = (any::<prop::sample::Index>(), any::<u8>()).prop_map(move |(at, byte)| {
        let mut t = text.clone();
        t.insert(at.index(t.len() + 1), byte);
        t
    });
    let values: Vec<Json> = seed_fields.iter().map(|(_, v)| v.clone()).collect();
    let non_object = prop_oneof![
        any_json().prop_filter("not an object", |j| !matches!(j, Json::Obj(_))),
        // What serde would read as the struct's fields in order.
        Just(Json::Arr(values.clone())),
        Just(Json::Arr(vec![seed_json.clone()])),
        Just(Json::Str(String::from_utf8_lossy(&seed_text).into_owned())),
    ];
    let key = prop_oneof![proptest::sample::select(names.clone()), odd_string()];
    let random_object = proptest::collection::vec((key, any_json()), 0..6).prop_map(Json::Obj);
    let field_values: Vec<BoxedStrategy<Json>> = seed_fields
        .iter()
        .map(|(name, _)| {
            let schema = props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone());
            match schema {
                Some(s) => prop_oneof![3 => typed(&s), 1 => any_json()].boxed(),
                None => any_json().boxed(),
            }
        })
        .collect();
    let mutated = mutations(seed_fields, field_values);
    let empty = Json::Obj(Vec::new());
    let oversized = Just(Json::Obj(vec![(
        "name".into(),
        Json::Str("x".repeat(BODY_LIMIT)),
    )]));
    let deep = (100usize..400).prop_map(|d| Json::Obj(vec![("name".into(), nested(d))]));
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..48),
        1 => truncated,
        1 => spliced,
        1 => Just(Vec::new()),
        1 => Just(b"   \n".to_vec()),
        2 => non_object.prop_map(|j| j.render().into_bytes()),
        2 => random_object.prop_map(|j| j.render().into_bytes()),
        3 => schema_object(props).prop_map(|j| j.render().into_bytes()),
        10 => mutated.prop_map(|j| j.render().into_bytes()),
        1 => Just(empty.render().into_bytes()),
        1 => oversized.prop_map(|j| j.render().into_bytes()),
        1 => deep.prop_map(|j| j.render().into_bytes()),
        1 => number().prop_map(|n| format!("{{\"ttl_seconds\":{n},\"grace_period_seconds\":{n}}}").into_bytes()),
    ]
    .boxed()
}

/// The valid body with one change: a field of its own type or any other,
/// null, left out, repeated with another value, or an extra field.
fn mutations(seed: Vec<(String, Json)>, values: Vec<BoxedStrategy<Json>>) -> BoxedStrategy<Json> {
    let extra = {
        let seed = seed.clone();
        (odd_string(), any_json()).prop_map(move |(k, v)| {
            let mut fields = seed.clone();
            fields.push((k, v));
            Json::Obj(fields)
        })
    };
    if seed.is_empty() {
        return extra.boxed();
    }
    let n = seed.len();
    let changed = (0..n)
        .prop_flat_map(move |i| (Just(i), 0u8..6, values[i].clone()))
        .prop_map(move |(i, how, value)| {
            let mut fields = seed.clone();
            match how {
                0 | 1 => fields[i].1 = value,
                2 => fields[i].1 = Json::Null,
                3 | 4 => {
                    fields.remove(i);
                }
                _ => {
                    let name = fields[i].0.clone();
                    fields.push((name, value));
                }
            }
            Json::Obj(fields)
        });
    prop_oneof![4 => changed, 1 => extra].boxed()
}

/// proptest's configuration here: `cases`, no regression files, and a
/// fixed seed per property (so a run is repeatable) unless
/// `PROPTEST_RNG_SEED` says otherwise.
fn runner(cases: u32, name: &str) -> TestRunner {
    let mut config = Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    };
    if matches!(config.rng_seed, RngSeed::Random) {
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        config.rng_seed = RngSeed::Fixed(seed);
    }
    TestRunner::new(config)
}

/// The failure of one property, readable.
fn describe<T: std::fmt::Debug>(what: &str, err: TestError<T>) -> String {
    match err {
        TestError::Fail(reason, value) => {
            let shown = format!("{value:?}");
            let shown: String = shown.chars().take(3000).collect();
            format!("{what}: {reason}\n  minimal input: {shown}")
        }
        TestError::Abort(reason) => format!("{what}: aborted: {reason}"),
    }
}

/// Bytes as a string where they are UTF-8, for failure messages.
#[derive(Clone)]
struct Shown(Vec<u8>);

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "bytes {:?}", self.0),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every POST, PUT and PATCH route of the OpenAPI document, sent arbitrary
/// and mutated JSON bodies by its real caller: never a 5xx or a panic,
/// errors in the SPEC §2 envelope, non-objects and non-JSON 400 on
/// `input`, and `/healthz` answers after each route.
#[test]
fn every_json_body_gets_an_enveloped_answer_sqlite() {
    every_json_body_gets_an_enveloped_answer(Backend::Sqlite);
}

/// The same on PostgreSQL, which refuses some text SQLite stores.
#[test]
fn every_json_body_gets_an_enveloped_answer_postgres() {
    every_json_body_gets_an_enveloped_answer(Backend::Postgres);
}

fn every_json_body_gets_an_enveloped_answer(backend: Backend) {
    let rt = runtime();
    let f = rt.block_on(Fixture::new(backend));
    let routes = body_routes();
    assert!(
        routes.len() >= 20,
        "only {} body routes found",
        routes.len()
    );
    let mut failures = Vec::new();
    for route in &routes {
        let path = f.fill(&route.path);
        let seed = f.seed(route);
        let strategy = bodies(route, &seed).prop_map(Shown);
        let content_types = prop_oneof![
            Just("application/json"),
            Just("application/json; charset=utf-8")
        ];
        let cases = if route.schema.is_some() {
            CASES
        } else {
            CASES / 4
        };
        let what = format!("{} {}", route.method, route.path);
        if route.schema.is_some() {
            // The seed is a body the route accepts, so the mutations start
            // from one that reaches the database.
            let (status, _, answer) = rt.block_on(f.send(
                route.method.clone(),
                &path,
                route.caller,
                &[("content-type", HeaderValue::from_static("application/json"))],
                seed.to_string().into_bytes(),
            ));
            assert!(
                status.is_success() || !hand_written(route),
                "{what}: the seed {seed} got {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        // Statuses seen, printed with a failure: how deep the cases got.
        let tally = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
        let result =
            runner(cases, &what).run(&(strategy, content_types), |(body, content_type)| {
                rt.block_on(async {
                    let (status, headers, answer) = f
                        .send(
                            route.method.clone(),
                            &path,
                            route.caller,
                            &[("content-type", HeaderValue::from_static(content_type))],
                            body.0.clone(),
                        )
                        .await;
                    *tally.lock().unwrap().entry(status.as_u16()).or_default() += 1;
                    let answer = check_answer(status, &headers, &answer)?;
                    if status.is_success() && status != StatusCode::NO_CONTENT {
                        prop_assert!(is_json(&headers), "{status} without a JSON body");
                    }
                    if route.schema.is_some() {
                        check_body_rules(&body.0, status, &answer)?;
                    }
                    Ok(())
                })
            });
        eprintln!("{what}: {:?}", tally.lock().unwrap());
        if let Err(err) = result {
            failures.push(describe(&what, err));
        }
        rt.block_on(f.healthy());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs one property, recording its failure (with the minimal input) in
/// `failures` rather than stopping the others.
fn property<S>(
    failures: &mut Vec<String>,
    what: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    if let Err(err) = runner(cases, what).run(&strategy, test) {
        failures.push(describe(what, err));
    }
}

/// Every byte percent-encoded except the unreserved ones (RFC 3986).
fn pct(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query or path value: odd text, a number, a boolean, or raw bytes
/// (not always UTF-8 once decoded).
fn param_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => odd_string().prop_map(String::into_bytes),
        2 => number().prop_map(String::into_bytes),
        1 => proptest::sample::select(vec!["true", "false", "0", "201", "1"]).prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..12),
    ]
}

/// A header value as HTTP allows one: visible ASCII, spaces and tabs, and
/// bytes above 0x7f.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    let byte = prop_oneof![
        6 => 0x20u8..0x7f,
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    proptest::collection::vec(byte, 0..80)
        .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap())
}

/// `token` with one character replaced by another one of a token's
/// alphabet (`[A-Za-z0-9_.-]`), at `at`.
fn tamper(token: &str, at: prop::sample::Index, with: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    let mut c = alphabet[usize::from(with) % alphabet.len()];
    if c == bytes[i] {
        c = if c == b'A' { b'B' } else { b'A' };
    }
    bytes[i] = c;
    String::from_utf8(bytes).unwrap()
}

/// The query parameters a route's OpenAPI entry declares.
fn query_names(op: &Value) -> Vec<String> {
    op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every GET route's query string (its declared parameters and others,
/// with odd, numeric and non-UTF-8 values) and path parameters (real ids,
/// or anything), and every DELETE route's path parameters (never a real
/// id): no 5xx, errors in the envelope.
fn every_query_and_path_parameter(backend: Backend) {
    let rt = runtime();
    let f = rt.block_on(Fixture::new(backend));
    let doc = serde_json::to_value(gatehouse::http::openapi_document()).unwrap();
    let app = app_paths();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "delete"] {
            let Some(op) = item.get(method) else { continue };
            checked += 1;
            let caller = caller_of(&app, path, op);
            let mut names = query_names(op);
            names.push("id".into());
            let key = prop_oneof![
                3 => proptest::sample::select(names).prop_map(String::into_bytes),
                1 => param_value(),
            ];
            let query = proptest::collection::vec((key, param_value()), 0..5);
            let real_ids = method == "get";
            let strategy = (query, param_value(), proptest::bool::weighted(0.7));
            let what = format!("{} {path}?…", method.to_uppercase());
            let method: Method = method.to_uppercase().parse().unwrap();
            property(
                &mut failures,
                &what,
                CASES / 4,
                strategy,
                |(query, id, real)| {
                    let filled = if real && real_ids {
                        f.fill(path)
                    } else {
                        path.split('/')
                            .map(|seg| {
                                if seg.starts_with('{') {
                                    pct(&id)
                                } else {
                                    seg.to_string()
                                }
                            })
                            .collect::<Vec<_>>()
                            .join("/")
                    };
                    let query: Vec<String> = query
                        .iter()
                        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                        .collect();
                    let uri = if query.is_empty() {
                        filled
                    } else {
                        format!("{filled}?{}", query.join("&"))
                    };
                    let (status, headers, body) =
                        rt.block_on(f.send(method.clone(), &uri, caller, &[], Vec::new()));
                    check_answer(status, &headers, &body).map(|_| ())
                },
            );
        }
    }
    assert!(checked >= 20, "only {checked} GET and DELETE routes found");
    rt.block_on(f.healthy());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The caller a route's OpenAPI entry asks for.
fn caller_of(app: &BTreeSet<String>, path: &str, op: &Value) -> Caller {
    let security: Vec<String> = op["security"]
        .as_array()
        .map(|reqs| {
            reqs.iter()
                .filter_map(Value::as_object)
                .flat_map(|o| o.keys().cloned())
                .collect()
        })
        .unwrap_or_default();
    if app.contains(path) {
        Caller::App
    } else if security.iter().any(|s| s == "connect_token") {
        Caller::ConnectToken
    } else if security.iter().any(|s| s == "bearer") {
        Caller::Bearer
    } else {
        Caller::Anonymous
    }
}

#[test]
fn every_query_and_path_parameter_sqlite() {
    every_query_and_path_parameter(Backend::Sqlite);
}

#[test]
fn every_query_and_path_parameter_postgres() {
    every_query_and_path_parameter(Backend::Postgres);
}

/// The headers every request is judged by, on SQLite:
///
/// - `Authorization`: any value, or a real access key, PAT or connect
///   token with one character changed, is 401 with `WWW-Authenticate`;
/// - `Host`: any value routes somewhere (`/healthz` answers 200 on every
///   surface), and the app's hostname in any case, with a port or a
///   trailing dot, is the app;
/// - `Cookie`: any session cookie that names no session is 401, and the
///   dashboard sends the browser to sign in;
/// - `X-Request-Id`: echoed exactly when it matches `[A-Za-z0-9._:-]{1,128}`.
#[test]
fn credentials_hosts_cookies_and_request_ids() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new(Backend::Sqlite));
    let mut failures = Vec::new();
    let tokens = vec![f.pat.clone(), f.key.clone(), f.connect_token.clone()];
    let authorization = prop_oneof![
        header_value(),
        (
            proptest::sample::select(tokens),
            any::<prop::sample::Index>(),
            any::<u8>(),
            proptest::sample::select(vec!["Bearer", "bearer", "BEARER", "Bearer "])
        )
            .prop_map(|(t, at, with, scheme)| HeaderValue::from_str(&format!(
                "{scheme} {}",
                tamper(&t, at, with)
            ))
            .unwrap()),
    ];
    property(
        &mut failures,
        "Authorization",
        CASES,
        authorization,
        |value| {
            for path in ["/v1/tokens/me", "/v1/connect/session"] {
                let (status, headers, body) = rt.block_on(f.send(
                    Method::GET,
                    path,
                    Caller::Anonymous,
                    &[("authorization", value.clone())],
                    Vec::new(),
                ));
                check_answer(status, &headers, &body)?;
                prop_assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{}: {}",
                    path,
                    String::from_utf8_lossy(&body)
                );
            }
            Ok(())
        },
    );

    let app_host = f.app_host.clone();
    let host = prop_oneof![
        header_value(),
        (
            proptest::collection::vec(any::<bool>(), 1..6),
            proptest::option::of(any::<u16>()),
            any::<bool>()
        )
            .prop_map(move |(mask, port, dot)| {
                let mut h: String = app_host
                    .chars()
                    .zip(mask.iter().cycle())
                    .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                    .collect();
                if dot {
                    h.push('.');
                }
                if let Some(port) = port {
                    h = format!("{h}:{port}");
                }
                HeaderValue::from_str(&h).unwrap()
            }),
    ];
    property(&mut failures, "Host", CASES, host, |value| {
        let (status, headers, body) = rt.block_on(f.send(
            Method::GET,
            "/healthz",
            Caller::Anonymous,
            &[("host", value.clone())],
            Vec::new(),
        ));
        check_answer(status, &headers, &body)?;
        prop_assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let (status, headers, body) = rt.block_on(f.send(
            Method::GET,
            "/v1/tokens/me",
            Caller::Bearer,
            &[("host", value.clone())],
            Vec::new(),
        ));
        check_answer(status, &headers, &body)?;
        let host = value
            .to_str()
            .ok()
            .and_then(gatehouse_core::validate::normalize_host);
        if host.as_deref() == Some(f.app_host.as_str()) {
            // The app's surface has no management routes.
            prop_assert_eq!(status, StatusCode::NOT_FOUND);
        } else {
            prop_assert!(
                matches!(status, StatusCode::OK | StatusCode::NOT_FOUND),
                "{}",
                status
            );
        }
        Ok(())
    });

    let cookie = prop_oneof![
        header_value(),
        (odd_string(), header_value()).prop_map(|(other, session)| {
            let mut v = format!("{}=1; gh_session=", pct(other.as_bytes())).into_bytes();
            v.extend_from_slice(session.as_bytes());
            HeaderValue::from_bytes(&v).unwrap()
        }),
    ];
    property(&mut failures, "Cookie", CASES, cookie, |value| {
        let (status, headers, body) = rt.block_on(f.send(
            Method::GET,
            "/v1/tokens/me",
            Caller::Anonymous,
            &[("cookie", value.clone())],
            Vec::new(),
        ));
        check_answer(status, &headers, &body)?;
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, headers, _) = rt.block_on(f.send(
            Method::GET,
            "/",
            Caller::Anonymous,
            &[("cookie", value.clone())],
            Vec::new(),
        ));
        prop_assert!(status.is_redirection(), "{}", status);
        prop_assert_eq!(
            headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
            Some("/login")
        );
        Ok(())
    });

    let request_id = prop_oneof![
        header_value(),
        "[A-Za-z0-9._:-]{1,140}".prop_map(|s| HeaderValue::from_str(&s).unwrap())
    ];
    property(&mut failures, "X-Request-Id", CASES, request_id, |value| {
        let (_, headers, _) = rt.block_on(f.send(
            Method::GET,
            "/v1/tokens/me",
            Caller::Bearer,
            &[("x-request-id", value.clone())],
            Vec::new(),
        ));
        let sent = value.as_bytes();
        let valid = (1..=128).contains(&sent.len())
            && sent
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(b));
        let got = headers.get("x-request-id").map(HeaderValue::as_bytes);
        if valid {
            prop_assert_eq!(got, Some(sent));
        } else {
            prop_assert!(got.is_some_and(|g| g.starts_with(b"rid_")), "{:?}", got);
        }
        Ok(())
    });
    rt.block_on(f.healthy());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The sign-in and sign-out form posts, with any fields or bytes, with
/// and without a matching CSRF cookie: never a 5xx, never a session for a
/// made-up password, the sign-in page again (HTML) for every refusal, and
/// sign-out without a session goes to `/login`.
#[test]
fn sign_in_and_sign_out_forms() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new(Backend::Sqlite));
    let owner = f._server.boot().owner_email.clone();
    let mut failures = Vec::new();
    let field = prop_oneof![
        3 => proptest::sample::select(vec!["email", "password", "csrf"]).prop_map(|s| s.as_bytes().to_vec()),
        1 => param_value(),
    ];
    let value = prop_oneof![
        3 => param_value(),
        1 => Just(owner.clone().into_bytes()),
    ];
    let form = prop_oneof![
        3 => proptest::collection::vec((field, value), 0..5).prop_map(|pairs| {
            pairs.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&").into_bytes()
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let content_type = prop_oneof![
        Just("application/x-www-form-urlencoded"),
        Just("application/json"),
        Just("text/plain"),
    ];
    let csrf = proptest::option::weighted(0.3, "[A-Za-z0-9]{1,20}");
    property(
        &mut failures,
        "POST /login",
        CASES / 4,
        (form, content_type, csrf),
        |(mut body, content_type, csrf)| {
            let mut headers = vec![("content-type", HeaderValue::from_static(content_type))];
            if let Some(token) = &csrf {
                headers.push((
                    "cookie",
                    HeaderValue::from_str(&format!("gh_login_csrf={token}")).unwrap(),
                ));
                body.extend_from_slice(format!("&csrf={token}").as_bytes());
            }
            let (status, headers, answer) =
                rt.block_on(f.send(Method::POST, "/login", Caller::Anonymous, &headers, body));
            let text = String::from_utf8_lossy(&answer);
            prop_assert!(!status.is_server_error(), "{}: {}", status, text);
            prop_assert!(
                !status.is_success() && !status.is_redirection(),
                "{} for a made-up password",
                status
            );
            let session = headers
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|v| v.as_bytes().starts_with(b"gh_session="));
            prop_assert!(!session, "a session for a made-up password");
            if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                check_answer(status, &headers, &answer)?;
            } else {
                let html = headers
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
                prop_assert!(html, "{}: {}", status, text);
            }
            Ok(())
        },
    );
    let body = proptest::collection::vec(any::<u8>(), 0..64);
    property(&mut failures, "POST /logout", CASES / 4, body, |body| {
        let form = HeaderValue::from_static("application/x-www-form-urlencoded");
        let (status, headers, answer) = rt.block_on(f.send(
            Method::POST,
            "/logout",
            Caller::Anonymous,
            &[("content-type", form)],
            body,
        ));
        prop_assert!(
            status.is_redirection(),
            "{}: {}",
            status,
            String::from_utf8_lossy(&answer)
        );
        prop_assert_eq!(
            headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
            Some("/login")
        );
        Ok(())
    });
    rt.block_on(f.healthy());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
