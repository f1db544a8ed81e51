//! `[oauth2_providers.<name>]` (SPEC §5.1): which OAuth2 provider signs end
//! users in for a connection type or an action connector, in which
//! environments. Every value is checked at start-up; errors name the key,
//! e.g. `oauth2_providers.google.token_url`.

use std::collections::{BTreeMap, HashMap};

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Config;
use crate::catalog::{AuthKind, Catalog};

/// [`OAuth2ProviderConfig`] by [`super::RawConfig::resolve`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2Provider {
    /// Exactly one of `connection_type` and `app_slug` must be set.
    pub connection_type: Option<String>,
    pub app_slug: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub environments: Vec<String>,
}

/// What an OAuth2 provider signs end users in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuth2Target {
    /// An OAuth2 connection type, e.g. `dynamiq.connections.GoogleOAuth2`.
    ConnectionType(String),
    /// An action connector's app, e.g. `gmail`.
    AppSlug(String),
}

impl OAuth2Target {
    /// The connection type name or app slug.
    pub fn as_str(&self) -> &str {
        match self {
            OAuth2Target::ConnectionType(s) | OAuth2Target::AppSlug(s) => s,
        }
    }
}

/// A checked `[oauth2_providers.<name>]`: URLs are https (http only for
/// localhost), client id and secret are present.
#[derive(Debug, Clone)]
pub struct OAuth2ProviderConfig {
    /// The connection type or app slug this provider serves (exactly one
    /// of `connection_type` and `app_slug` in the file).
    pub target: OAuth2Target,
    /// Where the end user's browser is sent to consent.
    pub authorize_url: String,
    /// Where the server exchanges the code (and refreshes tokens).
    pub token_url: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret; never printed by `Debug`.
    pub client_secret: SecretString,
    /// Scopes requested at authorization (possibly none).
    pub scopes: Vec<String>,
    /// The environment ids (`env_…`) served; empty means every environment.
    pub environments: Vec<String>,
}

impl OAuth2ProviderConfig {
    /// Whether this provider serves `environment_id`.
    pub fn serves(&self, environment_id: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment_id)
    }
}

/// Checks every `[oauth2_providers.<name>]`; errors name the key, e.g.
/// `oauth2_providers.google.token_url`.
pub(super) fn providers(
    raw: BTreeMap<String, RawOAuth2Provider>,
) -> anyhow::Result<BTreeMap<String, OAuth2ProviderConfig>> {
    let mut providers = BTreeMap::new();
    // (target, environment or None for "every") → provider name.
    let mut served: HashMap<(String, Option<String>), String> = HashMap::new();
    for (name, p) in raw {
        let key = format!("oauth2_providers.{name}");
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            bail!("invalid {key}: provider names use only a-z, A-Z, 0-9, _ and -");
        }
        let target = match (p.connection_type, p.app_slug) {
            (Some(ty), None) if !ty.trim().is_empty() => OAuth2Target::ConnectionType(ty),
            (None, Some(slug))
                if !slug.is_empty()
                    && slug.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    }) =>
            {
                OAuth2Target::AppSlug(slug)
            }
            (Some(_), None) => bail!("invalid {key}.connection_type: cannot be blank"),
            (None, Some(slug)) => {
                bail!("invalid {key}.app_slug: {slug:?} must be a-z, 0-9, _ and - only")
            }
            _ => bail!("invalid {key}: set exactly one of connection_type and app_slug"),
        };
        let authorize_url = endpoint(&format!("{key}.authorize_url"), p.authorize_url)?;
        let token_url = endpoint(&format!("{key}.token_url"), p.token_url)?;
        let client_id = match p.client_id {
            Some(id) if !id.trim().is_empty() => id,
            _ => bail!("invalid {key}.client_id: cannot be blank"),
        };
        let client_secret = match p.client_secret {
            Some(secret) if !secret.expose_secret().trim().is_empty() => secret,
            _ => bail!("invalid {key}.client_secret: cannot be blank"),
        };
        if let Some(scope) = p
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            bail!("invalid {key}.scopes: {scope:?} must be one scope, without spaces");
        }
        if let Some(env) = p
            .environments
            .iter()
            .find(|e| e.len() <= 4 || !e.starts_with("env_") || e.contains(char::is_whitespace))
        {
            bail!("invalid {key}.environments: {env:?} is not an environment id (env_…)");
        }
        let slots: Vec<Option<String>> = if p.environments.is_empty() {
            vec![None]
        } else {
            p.environments.iter().cloned().map(Some).collect()
        };
        for slot in slots {
            let other = served.insert((target.as_str().to_string(), slot.clone()), name.clone());
            if let Some(other) = other.filter(|other| *other != name) {
                let which = slot.unwrap_or_else(|| "every environment".into());
                bail!(
                    "invalid {key}.environments: {which} is already served for {:?} by oauth2_providers.{other}",
                    target.as_str()
                );
            }
        }
        providers.insert(
            name,
            OAuth2ProviderConfig {
                target,
                authorize_url,
                token_url,
                client_id,
                client_secret,
                scopes: p.scopes,
                environments: p.environments,
            },
        );
    }
    Ok(providers)
}

/// Every provider naming a `connection_type` must name an OAuth2 type of
/// `catalog`.
pub(super) fn check_targets(config: &Config, catalog: &Catalog) -> anyhow::Result<()> {
    for (name, provider) in &config.oauth2_providers {
        if let OAuth2Target::ConnectionType(ty) = &provider.target {
            if catalog.get(ty).map(|t| t.auth()) != Some(AuthKind::OAuth2) {
                bail!(
                    "invalid oauth2_providers.{name}.connection_type: {ty:?} is not an oauth2 connection type"
                );
            }
        }
    }
    Ok(())
}

/// An OAuth2 endpoint: an `https://` URL, or `http://` for a loopback
/// host (local development); no credentials, whitespace or control
/// characters in it. Kept as written.
fn endpoint(key: &str, value: Option<String>) -> anyhow::Result<String> {
    let Some(text) = value else {
        bail!("missing {key}: an https:// URL is required");
    };
    let bad = || {
        anyhow::anyhow!(
            "invalid {key}: {text:?} must be an https:// URL (http:// only for localhost)"
        )
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let url = url::Url::parse(&text).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad()),
    };
    match url.scheme() {
        "https" => Ok(text),
        "http" if loopback => Ok(text),
        _ => Err(bad()),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::layers::{Layer, RawConfig};

    pub const CATALOG_AND_PROVIDER: &str = r#"
[[connection_types]]
type = "acme.connections.Weather"
title = "Weather"
secret_fields = ["api_key"]

[connection_types.schema]
type = "object"
required = ["api_key"]

[connection_types.schema.properties.api_key]
type = "string"
title = "API key"
minLength = 1

[oauth2_providers.google]
connection_type = "dynamiq.connections.GoogleOAuth2"
authorize_url = "https://accounts.google.com/o/oauth2/v2/auth"
token_url = "https://oauth2.googleapis.com/token"
client_id = "client-123"
client_secret = "google-client-secret-value"
scopes = ["openid", "email"]
environments = ["env_sandbox1"]
"#;

    fn from_file(text: &str) -> anyhow::Result<Config> {
        Layer::from_toml(text)?.resolve()
    }

    /// `[[connection_types]]` and `[oauth2_providers.<name>]` parse into
    /// the config and the catalog.
    #[test]
    fn connection_types_and_providers_parse() {
        let cfg = from_file(CATALOG_AND_PROVIDER).unwrap();
        assert_eq!(cfg.connection_types.len(), 1);
        assert_eq!(cfg.connection_types[0].name, "acme.connections.Weather");
        assert_eq!(cfg.connection_types[0].auth, AuthKind::Credentials);
        let catalog = Catalog::with_additions(cfg.connection_types.clone()).unwrap();
        let weather = catalog.get("acme.connections.Weather").unwrap();
        assert_eq!(weather.secret_fields(), ["api_key"]);
        assert!(weather
            .validate(&serde_json::json!({"api_key": "k"}))
            .is_ok());

        let google = &cfg.oauth2_providers["google"];
        assert_eq!(
            google.target,
            OAuth2Target::ConnectionType("dynamiq.connections.GoogleOAuth2".into())
        );
        assert_eq!(google.scopes, ["openid", "email"]);
        assert_eq!(
            google.client_secret.expose_secret(),
            "google-client-secret-value"
        );
        let found = cfg.oauth2_provider_for("env_sandbox1", "dynamiq.connections.GoogleOAuth2");
        assert_eq!(found.map(|(name, _)| name), Some("google"));
        assert!(cfg
            .oauth2_provider_for("env_live1", "dynamiq.connections.GoogleOAuth2")
            .is_none());
        assert!(cfg
            .oauth2_provider_for("env_sandbox1", "dynamiq.connections.GitHubOAuth2")
            .is_none());
    }

    /// A provider naming an environment wins over one serving every
    /// environment; app slugs are looked up like connection types.
    #[test]
    fn provider_lookup_prefers_the_named_environment() {
        let provider = |envs: &str| {
            format!(
                "app_slug = \"gmail\"\nauthorize_url = \"https://a.example/auth\"\n\
                 token_url = \"https://a.example/token\"\nclient_id = \"id\"\n\
                 client_secret = \"s\"\nenvironments = [{envs}]\n"
            )
        };
        let text = format!(
            "[oauth2_providers.default]\n{}[oauth2_providers.live]\n{}",
            provider(""),
            provider("\"env_live1\"")
        );
        let cfg = from_file(&text).unwrap();
        let name = |env| cfg.oauth2_provider_for(env, "gmail").map(|(n, _)| n);
        assert_eq!(name("env_live1"), Some("live"));
        assert_eq!(name("env_sandbox1"), Some("default"));
        assert!(cfg.oauth2_provider_for("env_live1", "slack").is_none());

        let clash = format!(
            "[oauth2_providers.a]\n{}[oauth2_providers.b]\n{}",
            provider("\"env_live1\""),
            provider("\"env_live1\"")
        );
        let err = from_file(&clash).unwrap_err().to_string();
        assert!(err.contains("oauth2_providers.b.environments"), "{err}");
    }

    /// A bad provider value names its key.
    #[test]
    fn bad_provider_values_name_the_key() {
        let bad = |from: &str, to: &str| {
            let text = CATALOG_AND_PROVIDER.replace(from, to);
            assert_ne!(text, CATALOG_AND_PROVIDER, "{from}");
            format!("{:#}", from_file(&text).unwrap_err())
        };
        let token = "\"https://oauth2.googleapis.com/token\"";
        for url in [
            "\"http://oauth2.googleapis.com/token\"",
            "\"oauth2.googleapis.com/token\"",
            "\"https://\"",
            "\"https://user@host/token\"",
            "\"https://host:port/token\"",
        ] {
            let err = bad(token, url);
            assert!(
                err.contains("oauth2_providers.google.token_url"),
                "{url}: {err}"
            );
        }
        let err = bad(
            "authorize_url = \"https://accounts.google.com/o/oauth2/v2/auth\"",
            "",
        );
        assert!(
            err.contains("oauth2_providers.google.authorize_url"),
            "{err}"
        );
        let err = bad("client_id = \"client-123\"", "client_id = \" \"");
        assert!(err.contains("oauth2_providers.google.client_id"), "{err}");
        let err = bad(
            "client_secret = \"google-client-secret-value\"",
            "client_secret = \"\"",
        );
        assert!(
            err.contains("oauth2_providers.google.client_secret"),
            "{err}"
        );
        let err = bad(
            "connection_type = \"dynamiq.connections.GoogleOAuth2\"",
            "connection_type = \"dynamiq.connections.GoogleOAuth2\"\napp_slug = \"gmail\"",
        );
        assert!(err.contains("oauth2_providers.google"), "{err}");
        let err = bad("connection_type = \"dynamiq.connections.GoogleOAuth2\"", "");
        assert!(err.contains("exactly one"), "{err}");
        let err = bad(
            "\"dynamiq.connections.GoogleOAuth2\"",
            "\"dynamiq.connections.OpenAI\"",
        );
        assert!(
            err.contains("oauth2_providers.google.connection_type"),
            "{err}"
        );
        let err = bad("[\"env_sandbox1\"]", "[\"sandbox\"]");
        assert!(
            err.contains("oauth2_providers.google.environments"),
            "{err}"
        );
        let err = bad("\"email\"]", "\"two scopes\"]");
        assert!(err.contains("oauth2_providers.google.scopes"), "{err}");
        let err = bad(
            "title = \"Weather\"",
            "title = \"Weather\"\nauth = \"saml\"",
        );
        assert!(err.contains("saml"), "{err}");
        let err = bad("type = \"string\"", "type = \"strnig\"");
        assert!(err.contains("connection_types[0].schema"), "{err}");
    }

    /// http:// is allowed for local development hosts only.
    #[test]
    fn http_allowed_for_localhost_only() {
        for url in [
            "http://localhost:9000/token",
            "http://127.0.0.1/token",
            "http://[::1]:8080/token",
            "https://idp.example.com:8443/oauth/token?x=1",
        ] {
            assert!(endpoint("k", Some(url.into())).is_ok(), "{url}");
        }
        for url in ["http://localhost.evil.com/token", "http://10.0.0.1/token"] {
            assert!(endpoint("k", Some(url.into())).is_err(), "{url}");
        }
    }

    /// Neither Config nor RawConfig prints the client secret.
    #[test]
    fn debug_hides_client_secret() {
        let raw: RawConfig = toml::from_str(CATALOG_AND_PROVIDER).unwrap();
        assert!(!format!("{raw:?}").contains("google-client-secret-value"));
        let cfg = raw.resolve().unwrap();
        let debug = format!("{cfg:?}");
        assert!(debug.contains("client-123"), "{debug}");
        assert!(!debug.contains("google-client-secret-value"), "{debug}");
    }
}
