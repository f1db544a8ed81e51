//! The built-in connection types: API-key types and the generic OAuth2
//! types whose providers are configured per environment.

use serde_json::{json, Value};

use super::{AuthKind, ConnectionTypeConfig};

/// What built-in URL fields must match: an `http://` or `https://` URL with
/// a host. (The `format: uri` next to it is only an annotation for form
/// renderers; this pattern is what is enforced.)
pub(super) const HTTP_URL_PATTERN: &str = r"^https?://[^\s/?#]+([/?#]\S*)?$";

pub(super) fn builtin_definitions() -> Vec<ConnectionTypeConfig> {
    let text = |title: &str| json!({"type": "string", "title": title, "minLength": 1});
    let secret =
        |title: &str| json!({"type": "string", "title": title, "minLength": 1, "writeOnly": true});
    let url = |title: &str| {
        json!({
            "type": "string",
            "title": title,
            "minLength": 1,
            "format": "uri",
            "pattern": HTTP_URL_PATTERN,
        })
    };
    let credentials = |name: &str, title: &str, properties: Value, required: &[&str]| {
        let secret_fields = ["api_key"]
            .iter()
            .filter(|f| properties.get(**f).is_some())
            .map(|f| f.to_string())
            .collect();
        ConnectionTypeConfig {
            name: format!("dynamiq.connections.{name}"),
            title: title.into(),
            auth: AuthKind::Credentials,
            schema: object_schema(title, properties, required),
            secret_fields,
        }
    };
    // What the OAuth2 callback stores once the provider hands out tokens.
    let oauth2 = |name: &str, title: &str| ConnectionTypeConfig {
        name: format!("dynamiq.connections.{name}"),
        title: title.into(),
        auth: AuthKind::OAuth2,
        schema: object_schema(
            title,
            json!({
                "access_token": secret("Access token"),
                "refresh_token": secret("Refresh token"),
                "token_type": text("Token type"),
                "expires_at": {
                    "type": "string",
                    "title": "Expires at",
                    "minLength": 1,
                    "format": "date-time",
                },
                "scope": text("Scope"),
            }),
            &["access_token"],
        ),
        secret_fields: vec!["access_token".into(), "refresh_token".into()],
    };
    vec![
        credentials(
            "HttpApiKey",
            "HTTP API key",
            json!({"url": url("URL"), "api_key": secret("API key")}),
            &["url", "api_key"],
        ),
        credentials(
            "OpenAI",
            "OpenAI",
            json!({"api_key": secret("API key"), "url": url("Base URL")}),
            &["api_key"],
        ),
        credentials(
            "Anthropic",
            "Anthropic",
            json!({"api_key": secret("API key")}),
            &["api_key"],
        ),
        oauth2("GoogleOAuth2", "Google"),
        oauth2("GitHubOAuth2", "GitHub"),
        oauth2("OAuth2", "OAuth2"),
    ]
}

fn object_schema(title: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "title": title,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}
