//! The OpenAPI document says what the API does: its patterns accept exactly
//! what the validators accept, optional bodies are optional (and not
//! `null`), and statuses a route can answer are documented. The fuzzer in
//! tests/schemathesis checks the running API against the document; these
//! pin what it found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gatehouse_core::validate::{Name, Slug, UserId};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

fn document() -> Value {
    serde_json::to_value(gatehouse::http::openapi_document()).unwrap()
}

/// A validator for one component schema of the document.
fn component(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "{name} missing from components");
    jsonschema::validator_for(schema).unwrap()
}

/// Characters around every edge the validators have: whitespace (ASCII,
/// control and Unicode), controls, invisible format and separator
/// characters, slug characters, letters beyond ASCII, an astral one.
const POOL: &[char] = &[
    'a',
    'z',
    'A',
    '0',
    '9',
    '-',
    '_',
    '.',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u{0B}',
    '\u{85}',
    '\u{A0}',
    '\u{2003}',
    '\u{3000}',
    '\u{0}',
    '\u{1F}',
    '\u{7F}',
    '\u{9F}',
    '\u{1C}',
    '\u{AD}',
    '\u{200B}',
    '\u{200E}',
    '\u{202E}',
    '\u{2028}',
    '\u{2066}',
    '\u{FEFF}',
    '\u{E0001}',
    'é',
    'ß',
    '中',
    '😀',
];

/// Deterministic sample strings of 0–110 characters (and a few longer).
fn samples() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(0x6761_7465);
    let mut out: Vec<String> = (0..4000)
        .map(|i| {
            let len = if i % 10 == 0 {
                rng.random_range(95..110)
            } else {
                rng.random_range(0..8)
            };
            (0..len)
                .map(|_| POOL[rng.random_range(0..POOL.len())])
                .collect()
        })
        .collect();
    for n in [62, 63, 64, 98, 99, 100, 101, 249, 250, 251] {
        out.push("a".repeat(n));
        out.push(format!(" {} ", "b".repeat(n)));
    }
    out
}

fn assert_agrees(doc: &Value, schema: &str, parse: impl Fn(&str) -> bool) {
    let validator = component(doc, schema);
    for s in samples() {
        assert_eq!(
            validator.is_valid(&json!(s)),
            parse(&s),
            "{schema} and its validator disagree on {s:?}"
        );
    }
}

/// Names, slugs and end-user ids: a string matches the documented schema
/// exactly when the API accepts it.
#[test]
fn documented_patterns_match_the_validators() {
    let doc = document();
    assert_agrees(&doc, "NameText", |s| Name::parse(s).is_ok());
    assert_agrees(&doc, "SlugText", |s| Slug::parse(s).is_ok());
    // Every sample is already NFC, so length before and after agree.
    assert_agrees(&doc, "UserIdText", |s| UserId::parse(s).is_ok());
}

/// The fields that take a name, slug or user id use those schemas, and
/// required fields are required.
#[test]
fn request_bodies_name_their_constraints() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let reference = |name: &str| json!(format!("#/components/schemas/{name}"));
    let refers = |schema: &str, field: &str| &schemas[schema]["properties"][field]["$ref"];
    assert_eq!(refers("CreateCredential", "name"), &reference("NameText"));
    assert_eq!(schemas["CreateCredential"]["required"], json!(["name"]));
    assert_eq!(refers("EnvironmentInput", "name"), &reference("SlugText"));
    assert_eq!(refers("MintToken", "user_id"), &reference("UserIdText"));
    let grace = &schemas["RotateCredential"]["properties"]["grace_period_seconds"];
    assert_eq!(
        (grace["minimum"].as_i64(), grace["maximum"].as_i64()),
        (Some(0), Some(604_800))
    );
    let tokens = &schemas["LeakReport"]["properties"]["tokens"];
    assert_eq!(
        (tokens["minItems"].as_i64(), tokens["maxItems"].as_i64()),
        (Some(1), Some(100))
    );
    let scopes = schemas["ScopeName"]["enum"].as_array().unwrap();
    assert!(scopes.contains(&json!("connections:reveal")), "{scopes:?}");

    let requirement = component(&doc, "RequirementInput");
    let openai = json!({"name": "openai", "type": "connection",
        "spec": {"type": "connection", "data": {"type": "dynamiq.connections.OpenAI"}}});
    assert!(requirement.is_valid(&openai));
    for bad in [
        json!({"name": "Open AI", "type": "connection", "spec": openai["spec"]}),
        json!({"name": "openai", "type": "oauth", "spec": openai["spec"]}),
        json!({"name": "openai", "type": "connection", "spec": openai["spec"], "extra": 1}),
        json!({"name": "openai", "type": "connection"}),
    ] {
        assert!(!requirement.is_valid(&bad), "{bad}");
    }

    let page_size = doc["paths"]["/v1/access-keys"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "page_size")
        .unwrap();
    assert_eq!(page_size["schema"]["minimum"], 1);
    assert_eq!(page_size["schema"]["maximum"], 200);
}

/// A route whose fields are all optional takes no body (SPEC §2): its body
/// is not required, and not `null` either, which those routes refuse.
#[test]
fn optional_bodies_are_optional_and_not_null() {
    let doc = document();
    for (path, method, schema) in [
        ("/v1/projects/{id}", "patch", "ProjectUpdate"),
        ("/v1/environments/{id}", "patch", "EnvironmentUpdate"),
        ("/v1/access-keys/{id}/rotate", "post", "RotateCredential"),
        ("/v1/apps/{id}", "patch", "UpdateApp"),
        ("/v1/webhooks/{id}", "patch", "UpdateWebhook"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"];
        assert_ne!(body["required"], json!(true), "{method} {path}: {body}");
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": format!("#/components/schemas/{schema}")}),
            "{method} {path}"
        );
    }
    // And a body that is required stays so.
    assert_eq!(
        doc["paths"]["/v1/projects"]["post"]["requestBody"]["required"],
        json!(true)
    );
}

/// `/v1/tokens/me` and `/v1/session` document every client error: a
/// connect token on `/v1/tokens/me` is 403 (SPEC §2) and both can be 429.
#[test]
fn introspection_documents_its_client_errors() {
    let doc = document();
    for path in ["/v1/tokens/me", "/v1/session"] {
        let responses = doc["paths"][path]["get"]["responses"].as_object().unwrap();
        assert!(responses.contains_key("4XX"), "{path}: {responses:?}");
    }
}

/// Every operation has an id, used once (code generators such as
/// openapi-typescript key their `operations` by it), and the renamed ones
/// read as `<handler>_<resource>`.
#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut ids = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if let Some(op) = op.as_object().filter(|o| o.contains_key("responses")) {
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                ids.entry(id.to_string())
                    .or_default()
                    .push(format!("{method} {path}"));
            }
        }
    }
    let repeated: Vec<_> = ids.iter().filter(|(_, uses)| uses.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "operation ids used more than once: {repeated:?}"
    );
    assert_eq!(ids["list_access_keys"], ["get /v1/access-keys"]);
    assert_eq!(
        ids["rotate_personal_access_tokens"],
        ["post /v1/personal-access-tokens/{id}/rotate"]
    );
    assert_eq!(ids["revoke_credentials"], ["post /v1/credentials/revoke"]);
    assert_eq!(ids["mint"], ["post /v1/connect/tokens"]);
}
