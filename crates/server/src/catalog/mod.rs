//! The connection-type catalog (SPEC §5): every type a requirement may name,
//! how an end user supplies it (credentials or OAuth2), the JSON Schema its
//! `config` must satisfy and which config fields are secret. Built in
//! ([`builtin`]) and extended by `[[connection_types]]`; every schema is
//! compiled once, at start-up, so a bad addition stops the server before
//! it listens. [`messages`] turns schema errors into the API's field
//! details.

mod builtin;
mod messages;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, LazyLock},
};

use anyhow::{anyhow, bail};
use gatehouse_core::validate::BLANK;
use jsonschema::{error::ValidationErrorKind, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use builtin::builtin_definitions;
use messages::{dotted, message, schema_error, Details, Rank};

/// One `[[connection_types]]` entry: a connection type added to the
/// catalog (SPEC §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTypeConfig {
    /// The type name (`type` in the file), e.g. `acme.connections.Weather`.
    #[serde(rename = "type")]
    pub name: String,
    /// A human title.
    pub title: String,
    /// `credentials` (default) or `oauth2`.
    #[serde(default)]
    pub auth: AuthKind,
    /// The JSON Schema of `config`, written as a TOML table.
    pub schema: serde_json::Value,
    /// Which properties of the schema are secret.
    #[serde(default)]
    pub secret_fields: Vec<String>,
}

/// How an end user supplies a connection of a type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// The end user types the config (API keys, URLs) into a form.
    #[default]
    Credentials,
    /// The end user goes through an OAuth2 provider; the config holds the
    /// tokens the flow obtained.
    OAuth2,
}

impl AuthKind {
    /// `credentials` or `oauth2`, as in the API and the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Credentials => "credentials",
            AuthKind::OAuth2 => "oauth2",
        }
    }
}

/// One entry of the catalog, with its compiled schema. Fields are private so
/// the schema and its validator can never disagree.
#[derive(Debug, Clone)]
pub struct ConnectionType {
    name: String,
    title: String,
    auth: AuthKind,
    schema: Value,
    secret_fields: Vec<String>,
    validator: Validator,
    /// [`Self::public_view`], built once.
    public: PublicView,
}

/// A connection type as API responses show it, shared rather than copied
/// into every response.
#[derive(Debug, Clone)]
pub struct PublicView(Arc<Value>);

impl Serialize for PublicView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::ops::Deref for PublicView {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

impl ConnectionType {
    /// The type name, e.g. `dynamiq.connections.OpenAI`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A human title, e.g. `OpenAI`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Credentials form or OAuth2 flow.
    pub fn auth(&self) -> AuthKind {
        self.auth
    }

    /// The JSON Schema of `config` (each property has a `title`, the form
    /// label).
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The config fields that are secret (password inputs; redacted).
    pub fn secret_fields(&self) -> &[String] {
        &self.secret_fields
    }

    /// Whether `field` is one of the secret fields.
    pub fn is_secret(&self, field: &str) -> bool {
        self.secret_fields.iter().any(|f| f == field)
    }

    /// Checks `config` against the schema. On failure, the details map each
    /// field, named `config` or `config.<dotted path>`, to a message:
    /// a missing required property, an empty or whitespace-only string and
    /// a null are "cannot be blank"; an undeclared property is "is not a
    /// field of <type>"; anything else is a short message that never
    /// repeats the submitted value (it may be a secret).
    pub fn validate(&self, config: &Value) -> Result<(), BTreeMap<String, String>> {
        let mut details = Details::default();
        for error in self.validator.iter_errors(config) {
            let at = dotted(error.instance_path());
            match error.kind() {
                ValidationErrorKind::Required { property } => {
                    let property = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_string);
                    details.add(format!("{at}.{property}"), Rank::Blank, BLANK.into());
                }
                ValidationErrorKind::AdditionalProperties { unexpected }
                | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    for property in unexpected {
                        let message = format!("is not a field of {}", self.name);
                        details.add(format!("{at}.{property}"), Rank::Other, message);
                    }
                }
                _ => {
                    let (rank, message) = message(&error);
                    details.add(at, rank, message);
                }
            }
        }
        // minLength lets "   " through; a whitespace-only value is as blank
        // as an empty one.
        if let (Some(object), Some(properties)) = (config.as_object(), self.properties()) {
            for (field, value) in object {
                let blank = value.as_str().is_some_and(|s| s.trim().is_empty());
                if blank && properties.contains_key(field) {
                    details.add(format!("config.{field}"), Rank::Blank, BLANK.into());
                }
            }
        }
        if details.0.is_empty() {
            Ok(())
        } else {
            Err(details.0.into_iter().map(|(k, (_, m))| (k, m)).collect())
        }
    }

    /// The type as API responses show it: `{type, title, auth, schema,
    /// secret_fields}`.
    pub fn public_view(&self) -> PublicView {
        self.public.clone()
    }

    /// A copy of `config` with every secret field present set to null, for
    /// logs and tests.
    pub fn redact(&self, config: &Value) -> Value {
        let mut copy = config.clone();
        if let Some(object) = copy.as_object_mut() {
            for field in &self.secret_fields {
                if let Some(value) = object.get_mut(field) {
                    *value = Value::Null;
                }
            }
        }
        copy
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.schema.get("properties").and_then(Value::as_object)
    }

    /// Checks a type definition and compiles its schema. Errors are phrased
    /// relative to the definition (`type`, `schema.properties.x.type`…);
    /// the caller prefixes where the definition came from.
    fn compile(def: ConnectionTypeConfig) -> Result<Self, String> {
        let ConnectionTypeConfig {
            name,
            title,
            auth,
            mut schema,
            secret_fields,
        } = def;
        if !is_type_name(&name) {
            return Err(format!(
                "type: {name:?} must be dotted identifiers such as acme.connections.Weather"
            ));
        }
        if title.trim().is_empty() {
            return Err(format!("title: {BLANK}"));
        }
        let Some(object) = schema.as_object_mut() else {
            return Err("schema: must be a table (a JSON Schema object)".into());
        };
        if object.get("type").and_then(Value::as_str) != Some("object") {
            return Err("schema.type: must be \"object\"".into());
        }
        // Every stored field must be declared, so that whether it is secret
        // is known: undeclared properties are refused unless the schema says
        // otherwise.
        object
            .entry("additionalProperties")
            .or_insert(Value::Bool(false));
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(properties) = properties.as_object_mut() else {
            return Err("schema.properties: must be a table".into());
        };
        for (field, property) in properties.iter_mut() {
            // The hosted page labels inputs with `title`; default it.
            if let Some(property) = property.as_object_mut() {
                property
                    .entry("title")
                    .or_insert_with(|| Value::String(field.clone()));
            }
        }
        for field in &secret_fields {
            if !properties.contains_key(field) {
                return Err(format!(
                    "secret_fields: {field:?} is not a property of the schema"
                ));
            }
        }
        let validator = jsonschema::options()
            .offline()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| schema_error(&e))?;
        let public = PublicView(Arc::new(json!({
            "type": name,
            "title": title,
            "auth": auth.as_str(),
            "schema": schema,
            "secret_fields": secret_fields,
        })));
        Ok(ConnectionType {
            name,
            title,
            auth,
            schema,
            secret_fields,
            validator,
            public,
        })
    }
}

/// Every connection type this deployment knows.
#[derive(Debug, Clone)]
pub struct Catalog {
    types: BTreeMap<String, ConnectionType>,
}

/// The built-in types, compiled once per process.
static BUILTIN: LazyLock<Catalog> = LazyLock::new(|| {
    let types = builtin_definitions()
        .into_iter()
        .map(|def| {
            let name = def.name.clone();
            match ConnectionType::compile(def) {
                Ok(ty) => (name, ty),
                // A programming error, caught by the tests below.
                Err(e) => panic!("built-in connection type {name} is invalid: {e}"),
            }
        })
        .collect();
    Catalog { types }
});

impl Catalog {
    /// The built-in types only.
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// The built-in types plus `additions` (from `[[connection_types]]`).
    /// An addition may not reuse a built-in or an earlier addition's name;
    /// any problem is an error naming `connection_types[i]`.
    pub fn with_additions(additions: Vec<ConnectionTypeConfig>) -> anyhow::Result<Self> {
        let mut catalog = Self::builtin();
        let mut added: HashMap<String, usize> = HashMap::new();
        for (i, def) in additions.into_iter().enumerate() {
            if catalog.types.contains_key(&def.name) {
                match added.get(&def.name) {
                    Some(first) => bail!(
                        "invalid connection_types[{i}].type: {:?} is already defined by connection_types[{first}]",
                        def.name
                    ),
                    None => bail!(
                        "invalid connection_types[{i}].type: {:?} is a built-in connection type",
                        def.name
                    ),
                }
            }
            let ty = ConnectionType::compile(def)
                .map_err(|e| anyhow!("invalid connection_types[{i}].{e}"))?;
            added.insert(ty.name.clone(), i);
            catalog.types.insert(ty.name.clone(), ty);
        }
        Ok(catalog)
    }

    /// The type called `name`.
    pub fn get(&self, name: &str) -> Option<&ConnectionType> {
        self.types.get(name)
    }

    /// Every type, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &ConnectionType> {
        self.types.values()
    }
}

/// `acme.connections.Weather`: dot-separated identifiers.
fn is_type_name(name: &str) -> bool {
    name.len() <= 200
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn builtin(name: &str) -> ConnectionType {
        Catalog::builtin()
            .get(&format!("dynamiq.connections.{name}"))
            .cloned()
            .expect("built-in type")
    }

    fn addition(name: &str, schema: Value) -> ConnectionTypeConfig {
        ConnectionTypeConfig {
            name: name.into(),
            title: "Weather".into(),
            auth: AuthKind::Credentials,
            schema,
            secret_fields: vec!["api_key".into()],
        }
    }

    /// Every built-in compiles, is an object schema closed to extra fields,
    /// titles every property and declares its secrets.
    #[test]
    fn builtins_are_well_formed() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.iter().count(), 6);
        for ty in catalog.iter() {
            let schema = ty.schema();
            assert_eq!(schema["type"], "object", "{}", ty.name());
            assert_eq!(schema["additionalProperties"], false, "{}", ty.name());
            assert!(schema["required"].is_array(), "{}", ty.name());
            for (field, property) in schema["properties"].as_object().unwrap() {
                assert!(property["title"].is_string(), "{}.{field}", ty.name());
                assert_eq!(property["minLength"], 1, "{}.{field}", ty.name());
            }
            assert!(!ty.secret_fields().is_empty(), "{}", ty.name());
        }
    }

    /// Each built-in accepts a good config.
    #[test]
    fn builtins_accept_good_configs() {
        let good = [
            (
                "HttpApiKey",
                json!({"url": "https://api.example.com/v1", "api_key": "k"}),
            ),
            ("OpenAI", json!({"api_key": "sk-1"})),
            (
                "OpenAI",
                json!({"api_key": "sk-1", "url": "http://localhost:8000"}),
            ),
            ("Anthropic", json!({"api_key": "sk-ant-1"})),
            ("GoogleOAuth2", json!({"access_token": "ya29"})),
            (
                "GitHubOAuth2",
                json!({"access_token": "gho", "refresh_token": "ghr", "scope": "repo"}),
            ),
            (
                "OAuth2",
                json!({"access_token": "t", "expires_at": "2030-01-01T00:00:00Z", "token_type": "Bearer"}),
            ),
        ];
        for (name, config) in good {
            assert_eq!(builtin(name).validate(&config), Ok(()), "{name} {config}");
        }
    }

    /// A missing, empty, whitespace-only or null api_key is "cannot be blank".
    #[test]
    fn blank_api_key() {
        let openai = builtin("OpenAI");
        let expected = Err(details(&[("config.api_key", BLANK)]));
        for config in [
            json!({}),
            json!({"api_key": ""}),
            json!({"api_key": "   "}),
            json!({"api_key": null}),
        ] {
            assert_eq!(openai.validate(&config), expected, "{config}");
        }
    }

    /// An undeclared field is refused under its own path.
    #[test]
    fn extra_field_is_named() {
        let result = builtin("Anthropic").validate(&json!({"api_key": "k", "org": "x"}));
        assert_eq!(
            result,
            Err(details(&[(
                "config.org",
                "is not a field of dynamiq.connections.Anthropic"
            )]))
        );
    }

    /// A value of the wrong type names the field; a non-object config is
    /// keyed `config`.
    #[test]
    fn wrong_type_names_the_field() {
        let openai = builtin("OpenAI");
        assert_eq!(
            openai.validate(&json!({"api_key": 42})),
            Err(details(&[("config.api_key", "must be a string")]))
        );
        assert_eq!(
            openai.validate(&json!("sk-1")),
            Err(details(&[("config", "must be an object")]))
        );
    }

    /// URLs must be http(s); the message never echoes the value.
    #[test]
    fn bad_url_names_config_url() {
        let http = builtin("HttpApiKey");
        for url in ["ftp://example.com", "example.com", "https://", "http:// x"] {
            assert_eq!(
                http.validate(&json!({"url": url, "api_key": "k"})),
                Err(details(&[(
                    "config.url",
                    "must be an http:// or https:// URL"
                )])),
                "{url}"
            );
        }
        let errors = http.validate(&json!({})).unwrap_err();
        assert_eq!(
            errors,
            details(&[("config.api_key", BLANK), ("config.url", BLANK)])
        );
    }

    /// Messages for secret fields never contain the submitted secret.
    #[test]
    fn messages_do_not_echo_values() {
        let ty = Catalog::with_additions(vec![addition(
            "acme.Weather",
            json!({"type": "object", "properties": {"api_key": {"type": "string", "maxLength": 3, "enum": ["a"]}}}),
        )])
        .unwrap();
        let errors = ty
            .get("acme.Weather")
            .unwrap()
            .validate(&json!({"api_key": "supersecret"}))
            .unwrap_err();
        let text = format!("{errors:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(errors.contains_key("config.api_key"), "{text}");
    }

    /// A valid addition joins the catalog, with defaults for missing
    /// property titles and additionalProperties.
    #[test]
    fn valid_addition_works() {
        let catalog = Catalog::with_additions(vec![addition(
            "acme.connections.Weather",
            json!({
                "type": "object",
                "required": ["api_key"],
                "properties": {"api_key": {"type": "string", "minLength": 1}},
            }),
        )])
        .unwrap();
        let ty = catalog.get("acme.connections.Weather").unwrap();
        assert_eq!(ty.validate(&json!({"api_key": "k"})), Ok(()));
        assert_eq!(
            ty.validate(&json!({"api_key": "k", "x": 1})),
            Err(details(&[(
                "config.x",
                "is not a field of acme.connections.Weather"
            )]))
        );
        assert_eq!(ty.schema()["properties"]["api_key"]["title"], "api_key");
        assert!(catalog.get("dynamiq.connections.OpenAI").is_some());
        assert_eq!(catalog.iter().count(), 7);
    }

    /// A bad addition is a start-up error naming `connection_types[i]`.
    #[test]
    fn invalid_additions_name_their_index() {
        let err = |defs: Vec<ConnectionTypeConfig>| {
            Catalog::with_additions(defs).unwrap_err().to_string()
        };
        let good = json!({"type": "object", "properties": {"api_key": {"type": "string"}}});
        let bad_schema = json!({"type": "object", "properties": {"api_key": {"type": "strnig"}}});
        let message = err(vec![
            addition("acme.A", good.clone()),
            addition("acme.B", bad_schema),
        ]);
        assert!(
            message.contains("connection_types[1].schema.properties.api_key.type"),
            "{message}"
        );
        let message = err(vec![addition("dynamiq.connections.OpenAI", good.clone())]);
        assert!(
            message.contains("connection_types[0].type") && message.contains("built-in"),
            "{message}"
        );
        let message = err(vec![
            addition("acme.A", good.clone()),
            addition("acme.A", good.clone()),
        ]);
        assert!(message.contains("connection_types[1].type"), "{message}");
        let message = err(vec![addition("acme.A", json!({"type": "string"}))]);
        assert!(
            message.contains("connection_types[0].schema.type"),
            "{message}"
        );
        let message = err(vec![addition(
            "acme.A",
            json!({"type": "object", "properties": {"key": {"type": "string"}}}),
        )]);
        assert!(
            message.contains("connection_types[0].secret_fields"),
            "{message}"
        );
        let message = err(vec![addition("not a name", good)]);
        assert!(message.contains("connection_types[0].type"), "{message}");
    }

    /// External references are never fetched.
    #[test]
    fn remote_refs_are_refused() {
        let schema = json!({
            "type": "object",
            "properties": {"api_key": {"$ref": "https://example.com/schema.json"}},
        });
        let message = Catalog::with_additions(vec![addition("acme.A", schema)])
            .unwrap_err()
            .to_string();
        assert!(message.contains("connection_types[0]"), "{message}");
    }

    /// The public view carries what the API and the hosted page need.
    #[test]
    fn public_view_and_redact() {
        let ty = builtin("HttpApiKey");
        let view = ty.public_view();
        assert_eq!(view["type"], "dynamiq.connections.HttpApiKey");
        assert_eq!(view["auth"], "credentials");
        assert_eq!(view["secret_fields"], json!(["api_key"]));
        assert_eq!(view["schema"]["properties"]["api_key"]["title"], "API key");
        assert_eq!(builtin("GitHubOAuth2").public_view()["auth"], "oauth2");
        assert_eq!(
            ty.redact(&json!({"url": "https://x.io", "api_key": "k"})),
            json!({"url": "https://x.io", "api_key": null})
        );
    }
}
