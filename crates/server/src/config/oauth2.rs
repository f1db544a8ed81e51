//! `[oauth2_providers.<name>]` (SPEC §5.1): which OAuth2 provider signs end
//! users in for a connection type or an action connector, in which
//! environments. Every value is checked at start-up; errors name the key,
//! e.g. `oauth2_providers.google.token_url`. The same settings, once
//! checked, describe a provider created through the API
//! ([`ProviderSettings`]).

use std::collections::{BTreeMap, HashMap};

use anyhow::bail;
use gatehouse_core::oauth2::{check_endpoint, preset, ClientAuth, ProviderTarget};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Config;
use crate::catalog::{AuthKind, Catalog};

/// `[oauth2_providers.<name>]` as written in the file; checked into an
/// [`OAuth2ProviderConfig`] by [`super::RawConfig::resolve`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2Provider {
    /// Exactly one of `connection_type` and `app_slug` must be set.
    pub connection_type: Option<String>,
    pub app_slug: Option<String>,
    /// A well-known provider whose endpoints fill the ones not given.
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    /// An OpenID discovery document that fills missing endpoints (and
    /// `issuer`) when the provider is first used.
    pub discovery_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub client_auth: Option<String>,
    #[serde(default)]
    pub environments: Vec<String>,
}

/// Everything needed to run the OAuth2 flow with one provider, checked:
/// endpoint URLs are https (http only for loopback hosts), the client id
/// and secret are present, and either both endpoints are known or a
/// discovery document will supply them. Shared by file and API providers.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: String,
    /// Never printed by `Debug`.
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    pub extra_authorize_params: BTreeMap<String, String>,
    pub client_auth: ClientAuth,
}

/// A checked `[oauth2_providers.<name>]`.
#[derive(Debug, Clone)]
pub struct OAuth2ProviderConfig {
    /// The connection type or app slug this provider serves.
    pub target: ProviderTarget,
    pub settings: ProviderSettings,
    /// The environment ids (`env_…`) served; empty means every environment.
    pub environments: Vec<String>,
}

impl OAuth2ProviderConfig {
    /// Whether this provider serves `environment_id`.
    pub fn serves(&self, environment_id: &str) -> bool {
        self.environments.is_empty() || self.environments.iter().any(|e| e == environment_id)
    }
}

/// Provider settings as given, before they are checked (from the file or
/// an API request). Each error names the field it is about.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub extra_authorize_params: BTreeMap<String, String>,
    pub client_auth: Option<String>,
}

/// Why settings were refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl SettingsInput {
    /// Fills endpoints from the preset (explicit values win), then checks
    /// every field.
    pub fn check(self) -> Result<ProviderSettings, SettingsError> {
        let err = |field: &'static str, message: String| SettingsError { field, message };
        let preset = match self.preset.as_deref() {
            None => None,
            Some(name) => Some(
                preset(name)
                    .ok_or_else(|| err("preset", format!("{name:?} is not a known preset")))?,
            ),
        };
        let pick = |own: Option<String>, from_preset: Option<&str>| {
            own.filter(|v| !v.is_empty())
                .or(from_preset.map(str::to_string))
        };
        let authorize_url = pick(self.authorize_url, preset.map(|p| p.authorize_url));
        let token_url = pick(self.token_url, preset.map(|p| p.token_url));
        let userinfo_url = pick(self.userinfo_url, preset.and_then(|p| p.userinfo_url));
        let issuer = pick(self.issuer, preset.and_then(|p| p.issuer));
        let discovery_url = self.discovery_url.filter(|v| !v.is_empty());
        for (field, value) in [
            ("authorize_url", &authorize_url),
            ("token_url", &token_url),
            ("userinfo_url", &userinfo_url),
            ("discovery_url", &discovery_url),
        ] {
            if let Some(url) = value {
                check_endpoint(url).map_err(|m| err(field, m))?;
            }
        }
        if discovery_url.is_none() {
            if authorize_url.is_none() {
                return Err(err(
                    "authorize_url",
                    "an https:// URL is required (or a preset or discovery_url)".into(),
                ));
            }
            if token_url.is_none() {
                return Err(err(
                    "token_url",
                    "an https:// URL is required (or a preset or discovery_url)".into(),
                ));
            }
        }
        let client_id = match self.client_id {
            Some(id) if !id.trim().is_empty() => id,
            _ => return Err(err("client_id", "cannot be blank".into())),
        };
        let client_secret = match self.client_secret {
            Some(secret) if !secret.expose_secret().trim().is_empty() => secret,
            _ => return Err(err("client_secret", "cannot be blank".into())),
        };
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(err(
                "scopes",
                format!("{scope:?} must be one scope, without spaces"),
            ));
        }
        if let Some((k, _)) = self
            .extra_authorize_params
            .iter()
            .find(|(k, v)| k.is_empty() || is_reserved_param(k) || v.chars().any(char::is_control))
        {
            return Err(err(
                "extra_authorize_params",
                format!("{k:?} cannot be set here (Gatehouse sets the OAuth2 parameters itself)"),
            ));
        }
        let client_auth = match self.client_auth.as_deref() {
            None => preset.map(|p| p.client_auth).unwrap_or_default(),
            Some(text) => ClientAuth::parse(text).ok_or_else(|| {
                err(
                    "client_auth",
                    "must be client_secret_basic or client_secret_post".into(),
                )
            })?,
        };
        let mut extra: BTreeMap<String, String> = preset
            .map(|p| {
                p.extra_authorize_params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        extra.extend(self.extra_authorize_params);
        Ok(ProviderSettings {
            preset: self.preset,
            authorize_url,
            token_url,
            userinfo_url,
            issuer,
            discovery_url,
            client_id,
            client_secret,
            scopes: self.scopes,
            extra_authorize_params: extra,
            client_auth,
        })
    }
}

/// Parameters of the authorization request that Gatehouse sets itself.
fn is_reserved_param(name: &str) -> bool {
    matches!(
        name,
        "response_type"
            | "client_id"
            | "redirect_uri"
            | "scope"
            | "state"
            | "code_challenge"
            | "code_challenge_method"
    )
}

/// A provider target as given: exactly one of `connection_type` and
/// `app_slug`. `Err` names the field.
pub fn target(
    connection_type: Option<String>,
    app_slug: Option<String>,
) -> Result<ProviderTarget, SettingsError> {
    let err = |field: &'static str, message: &str| SettingsError {
        field,
        message: message.into(),
    };
    match (connection_type, app_slug) {
        (Some(ty), None) if !ty.trim().is_empty() => Ok(ProviderTarget::ConnectionType(ty)),
        (None, Some(slug))
            if !slug.is_empty()
                && slug.len() <= 100
                && slug.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                }) =>
        {
            Ok(ProviderTarget::AppSlug(slug))
        }
        (Some(_), None) => Err(err("connection_type", "cannot be blank")),
        (None, Some(_)) => Err(err("app_slug", "must be a-z, 0-9, _ and - only")),
        _ => Err(err(
            "connection_type",
            "set exactly one of connection_type and app_slug",
        )),
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
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            bail!("invalid {key}: provider names use only a-z, A-Z, 0-9, _ and -");
        }
        let target = match target(p.connection_type, p.app_slug) {
            Ok(target) => target,
            Err(e) if e.message.contains("exactly one") => {
                bail!("invalid {key}: set exactly one of connection_type and app_slug")
            }
            Err(e) => bail!("invalid {key}.{}: {}", e.field, e.message),
        };
        let settings = SettingsInput {
            preset: p.preset,
            authorize_url: p.authorize_url,
            token_url: p.token_url,
            userinfo_url: p.userinfo_url,
            issuer: p.issuer,
            discovery_url: p.discovery_url,
            client_id: p.client_id,
            client_secret: p.client_secret,
            scopes: p.scopes,
            extra_authorize_params: p.extra_authorize_params,
            client_auth: p.client_auth,
        }
        .check()
        .map_err(|e| anyhow::anyhow!("invalid {key}.{}: {}", e.field, e.message))?;
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
                settings,
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
        if let ProviderTarget::ConnectionType(ty) = &provider.target {
            if catalog.get(ty).map(|t| t.auth()) != Some(AuthKind::OAuth2) {
                bail!(
                    "invalid oauth2_providers.{name}.connection_type: {ty:?} is not an oauth2 connection type"
                );
            }
        }
    }
    Ok(())
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
            ProviderTarget::ConnectionType("dynamiq.connections.GoogleOAuth2".into())
        );
        assert_eq!(google.settings.scopes, ["openid", "email"]);
        assert_eq!(
            google.settings.client_secret.expose_secret(),
            "google-client-secret-value"
        );
        let google_type = ProviderTarget::ConnectionType("dynamiq.connections.GoogleOAuth2".into());
        let github_type = ProviderTarget::ConnectionType("dynamiq.connections.GitHubOAuth2".into());
        let found = cfg.oauth2_provider_for("env_sandbox1", &google_type);
        assert_eq!(found.map(|(name, _)| name), Some("google"));
        assert!(cfg.oauth2_provider_for("env_live1", &google_type).is_none());
        assert!(cfg
            .oauth2_provider_for("env_sandbox1", &github_type)
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
        let gmail = ProviderTarget::AppSlug("gmail".into());
        let name = |env| cfg.oauth2_provider_for(env, &gmail).map(|(n, _)| n);
        assert_eq!(name("env_live1"), Some("live"));
        assert_eq!(name("env_sandbox1"), Some("default"));
        assert!(cfg
            .oauth2_provider_for("env_live1", &ProviderTarget::AppSlug("slack".into()))
            .is_none());

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
            assert!(check_endpoint(url).is_ok(), "{url}");
        }
        for url in ["http://localhost.evil.com/token", "http://10.0.0.1/token"] {
            assert!(check_endpoint(url).is_err(), "{url}");
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
