//! Configuration (SPEC §10): defaults < `gatehouse.toml` <
//! `GATEHOUSE_<KEY>` environment variables < command-line flags. An invalid
//! value stops start-up with a message naming the key. The catalog
//! additions (`[[connection_types]]`) and OAuth2 providers
//! (`[oauth2_providers.<name>]`) are tables, so they come from the file only.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::catalog::{AuthKind, Catalog};

/// `text` (human) or `json` (one object per line) logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub public_url: String,
    pub apps_domain: String,
    pub master_key: Option<SecretString>,
    pub master_key_file: PathBuf,
    pub log_format: LogFormat,
    pub access_key_prefix: String,
    pub pat_prefix: String,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub trust_forwarded_headers: bool,
    /// How often batched `last_used_at` updates are written (seconds).
    pub last_used_flush_seconds: u64,
    /// `[[connection_types]]`: additions to the built-in catalog, already
    /// checked to compile (see [`Catalog::from_config`]).
    pub connection_types: Vec<ConnectionTypeConfig>,
    /// `[oauth2_providers.<name>]`, by name.
    pub oauth2_providers: BTreeMap<String, OAuth2ProviderConfig>,
}

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

/// `[oauth2_providers.<name>]` as written in the file; checked into an
/// [`OAuth2ProviderConfig`] by [`RawConfig::resolve`].
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

/// Every key as it may appear in `gatehouse.toml`, the environment or a
/// flag; `None` means "not set at this layer".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub public_url: Option<String>,
    pub apps_domain: Option<String>,
    pub master_key: Option<String>,
    pub master_key_file: Option<String>,
    pub log_format: Option<String>,
    pub access_key_prefix: Option<String>,
    pub pat_prefix: Option<String>,
    pub max_body_bytes: Option<TomlScalar>,
    pub max_header_bytes: Option<TomlScalar>,
    pub trust_forwarded_headers: Option<TomlScalar>,
    pub last_used_flush_seconds: Option<TomlScalar>,
    /// File only.
    pub connection_types: Option<Vec<ConnectionTypeConfig>>,
    /// File only.
    pub oauth2_providers: Option<BTreeMap<String, RawOAuth2Provider>>,
}

/// A scalar that may be written as a TOML number/bool or, from the
/// environment, as a string; parsed when the layers are resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TomlScalar {
    Int(i64),
    Bool(bool),
    Str(String),
}

impl TomlScalar {
    fn text(&self) -> String {
        match self {
            TomlScalar::Int(n) => n.to_string(),
            TomlScalar::Bool(b) => b.to_string(),
            TomlScalar::Str(s) => s.clone(),
        }
    }
}

macro_rules! overlay {
    ($base:ident, $top:ident, $($field:ident),*) => {
        $( if $top.$field.is_some() { $base.$field = $top.$field.clone(); } )*
    };
}

macro_rules! each_key {
    ($m:ident!($($args:tt)*)) => {
        $m!($($args)* listen, data_dir, database_url, redis_url, public_url, apps_domain, master_key,
            master_key_file, log_format, access_key_prefix, pat_prefix, max_body_bytes, max_header_bytes,
            trust_forwarded_headers, last_used_flush_seconds, connection_types, oauth2_providers)
    };
}

impl RawConfig {
    /// Lays `top` over `self`: every key `top` sets wins.
    pub fn overlay(mut self, top: &RawConfig) -> Self {
        each_key!(overlay!(self, top,));
        self
    }

    /// Reads a `gatehouse.toml`.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// Reads `GATEHOUSE_<KEY>` variables from `vars` (every scalar key; the
    /// tables `connection_types` and `oauth2_providers` are file only).
    pub fn from_env(vars: &HashMap<String, String>) -> Self {
        let get = |key: &str| {
            vars.get(&format!("GATEHOUSE_{}", key.to_ascii_uppercase()))
                .cloned()
        };
        let scalar = |key: &str| get(key).map(TomlScalar::Str);
        RawConfig {
            listen: get("listen"),
            data_dir: get("data_dir"),
            database_url: get("database_url"),
            redis_url: get("redis_url"),
            public_url: get("public_url"),
            apps_domain: get("apps_domain"),
            master_key: get("master_key"),
            master_key_file: get("master_key_file"),
            log_format: get("log_format"),
            access_key_prefix: get("access_key_prefix"),
            pat_prefix: get("pat_prefix"),
            max_body_bytes: scalar("max_body_bytes"),
            max_header_bytes: scalar("max_header_bytes"),
            trust_forwarded_headers: scalar("trust_forwarded_headers"),
            last_used_flush_seconds: scalar("last_used_flush_seconds"),
            connection_types: None,
            oauth2_providers: None,
        }
    }

    /// Applies defaults and checks every value, including that the catalog
    /// additions compile and the OAuth2 providers name OAuth2 types.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let listen_text = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("invalid listen: {listen_text:?} is not an address like 127.0.0.1:8080")
        })?;
        let data_dir = PathBuf::from(self.data_dir.unwrap_or_else(|| "./data".into()));
        let database_url = match self.database_url {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://") =>
            {
                url
            }
            Some(url) => {
                bail!("invalid database_url: {url:?} must start with sqlite:// or postgres://")
            }
            None => gatehouse_store::Store::sqlite_url(&data_dir),
        };
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("invalid redis_url: must start with redis:// or rediss://");
            }
        }
        let public_url = self
            .public_url
            .unwrap_or_else(|| format!("http://localhost:{}", listen.port()))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("invalid public_url: {public_url:?} must be an http:// or https:// URL");
        }
        let apps_domain = self
            .apps_domain
            .unwrap_or_else(|| "apps.localhost".into())
            .to_ascii_lowercase();
        if apps_domain.is_empty()
            || apps_domain.starts_with('.')
            || apps_domain.contains('/')
            || apps_domain.contains(':')
        {
            bail!(
                "invalid apps_domain: {apps_domain:?} must be a DNS name such as apps.example.com"
            );
        }
        let log_format = match self.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("invalid log_format: {other:?} must be text or json"),
        };
        let access_key_prefix = self.access_key_prefix.unwrap_or_else(|| "dyn_".into());
        let pat_prefix = self.pat_prefix.unwrap_or_else(|| "dyn_pat_".into());
        for (key, prefix) in [
            ("access_key_prefix", &access_key_prefix),
            ("pat_prefix", &pat_prefix),
        ] {
            let ok = (1..=16).contains(&prefix.len())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                bail!("invalid {key}: {prefix:?} must be 1-16 characters of a-z, 0-9 and _");
            }
        }
        if access_key_prefix == pat_prefix {
            bail!("invalid pat_prefix: must differ from access_key_prefix");
        }
        let master_key_file = self
            .master_key_file
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let config = Config {
            listen,
            data_dir,
            database_url,
            redis_url: self.redis_url,
            public_url,
            apps_domain,
            master_key: self.master_key.map(SecretString::from),
            master_key_file,
            log_format,
            access_key_prefix,
            pat_prefix,
            max_body_bytes: number(
                "max_body_bytes",
                self.max_body_bytes,
                64 * 1024,
                1024,
                16 << 20,
            )?,
            max_header_bytes: number(
                "max_header_bytes",
                self.max_header_bytes,
                16 * 1024,
                1024,
                1 << 20,
            )?,
            trust_forwarded_headers: boolean(
                "trust_forwarded_headers",
                self.trust_forwarded_headers,
                false,
            )?,
            last_used_flush_seconds: number(
                "last_used_flush_seconds",
                self.last_used_flush_seconds,
                30,
                1,
                60,
            )? as u64,
            connection_types: self.connection_types.unwrap_or_default(),
            oauth2_providers: oauth2_providers(self.oauth2_providers.unwrap_or_default())?,
        };
        Catalog::from_config(&config)?;
        Ok(config)
    }
}

/// Checks every `[oauth2_providers.<name>]`; errors name the key, e.g.
/// `oauth2_providers.google.token_url`.
fn oauth2_providers(
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
        let authorize_url = oauth2_url(&format!("{key}.authorize_url"), p.authorize_url)?;
        let token_url = oauth2_url(&format!("{key}.token_url"), p.token_url)?;
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

/// An OAuth2 endpoint: `https://host…`, or `http://` for localhost,
/// 127.0.0.1 and [::1] (local development).
fn oauth2_url(key: &str, value: Option<String>) -> anyhow::Result<String> {
    let Some(url) = value else {
        bail!("missing {key}: an https:// URL is required");
    };
    let bad = || {
        anyhow::anyhow!(
            "invalid {key}: {url:?} must be an https:// URL (http:// only for localhost)"
        )
    };
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(bad()),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty()
        || authority.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, port)) => (&authority[..host.len() + 2], port),
            None => return Err(bad()),
        },
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || !port_ok {
        return Err(bad());
    }
    let local = matches!(
        host.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "[::1]"
    );
    if !https && !local {
        return Err(bad());
    }
    Ok(url)
}

fn number(
    key: &str,
    value: Option<TomlScalar>,
    default: usize,
    min: usize,
    max: usize,
) -> anyhow::Result<usize> {
    match value {
        None => Ok(default),
        Some(v) => v
            .text()
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .with_context(|| {
                format!(
                    "invalid {key}: {:?} must be a whole number from {min} to {max}",
                    v.text()
                )
            }),
    }
}

fn boolean(key: &str, value: Option<TomlScalar>, default: bool) -> anyhow::Result<bool> {
    match value {
        None => Ok(default),
        Some(v) => match v.text().trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => bail!("invalid {key}: {other:?} must be true or false"),
        },
    }
}

impl Config {
    /// The configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        RawConfig::default().resolve().expect("defaults are valid")
    }

    /// The provider that signs end users of `environment_id` in for a
    /// connection type or app slug, with its name. A provider listing the
    /// environment wins over one serving every environment.
    pub fn oauth2_provider_for(
        &self,
        environment_id: &str,
        connection_type_or_app_slug: &str,
    ) -> Option<(&str, &OAuth2ProviderConfig)> {
        let candidates = || {
            self.oauth2_providers
                .iter()
                .filter(|(_, p)| p.target.as_str() == connection_type_or_app_slug)
        };
        candidates()
            .find(|(_, p)| p.environments.iter().any(|e| e == environment_id))
            .or_else(|| candidates().find(|(_, p)| p.environments.is_empty()))
            .map(|(name, p)| (name.as_str(), p))
    }

    pub fn token_prefixes(&self) -> gatehouse_core::TokenPrefixes {
        gatehouse_core::TokenPrefixes {
            access_key: self.access_key_prefix.clone(),
            pat: self.pat_prefix.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layers apply in order: defaults < file < environment < flags.
    #[test]
    fn layering_order() {
        let file: RawConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\npat_prefix = \"acme_pat_\"",
        )
        .unwrap();
        let env = RawConfig::from_env(&HashMap::from([
            ("GATEHOUSE_LISTEN".to_string(), "127.0.0.1:9100".to_string()),
            ("GATEHOUSE_LOG_FORMAT".to_string(), "json".to_string()),
        ]));
        let flags = RawConfig {
            data_dir: Some("/tmp/gh".into()),
            ..Default::default()
        };
        let cfg = RawConfig::default()
            .overlay(&file)
            .overlay(&env)
            .overlay(&flags)
            .resolve()
            .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.max_body_bytes, 2048);
        assert_eq!(cfg.pat_prefix, "acme_pat_");
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/gh"));
        assert_eq!(cfg.database_url, "sqlite:///tmp/gh/gatehouse.db");
        assert_eq!(cfg.public_url, "http://localhost:9100");
        assert_eq!(cfg.master_key_file, PathBuf::from("/tmp/gh/master.key"));
    }

    /// An invalid value names its key; an unknown key in the file is refused.
    #[test]
    fn invalid_values_name_the_key() {
        let bad = |raw: RawConfig| raw.resolve().unwrap_err().to_string();
        assert!(bad(RawConfig {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .contains("listen"));
        assert!(bad(RawConfig {
            log_format: Some("xml".into()),
            ..Default::default()
        })
        .contains("log_format"));
        assert!(bad(RawConfig {
            max_body_bytes: Some(TomlScalar::Str("lots".into())),
            ..Default::default()
        })
        .contains("max_body_bytes"));
        assert!(bad(RawConfig {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .contains("database_url"));
        let unknown = toml::from_str::<RawConfig>("listne = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("listne"), "{unknown}");
    }

    const CATALOG_AND_PROVIDER: &str = r#"
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
        toml::from_str::<RawConfig>(text)?.resolve()
    }

    /// `[[connection_types]]` and `[oauth2_providers.<name>]` parse into
    /// the config and the catalog.
    #[test]
    fn connection_types_and_providers_parse() {
        let cfg = from_file(CATALOG_AND_PROVIDER).unwrap();
        assert_eq!(cfg.connection_types.len(), 1);
        assert_eq!(cfg.connection_types[0].name, "acme.connections.Weather");
        assert_eq!(cfg.connection_types[0].auth, AuthKind::Credentials);
        let catalog = Catalog::from_config(&cfg).unwrap();
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
            assert!(oauth2_url("k", Some(url.into())).is_ok(), "{url}");
        }
        for url in ["http://localhost.evil.com/token", "http://10.0.0.1/token"] {
            assert!(oauth2_url("k", Some(url.into())).is_err(), "{url}");
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

    /// The tables come from the file only; the defaults have none.
    #[test]
    fn tables_are_file_only() {
        let env = RawConfig::from_env(&HashMap::from([(
            "GATEHOUSE_OAUTH2_PROVIDERS".to_string(),
            "x".to_string(),
        )]));
        assert!(env.oauth2_providers.is_none() && env.connection_types.is_none());
        let file: RawConfig = toml::from_str(CATALOG_AND_PROVIDER).unwrap();
        let cfg = RawConfig::default()
            .overlay(&file)
            .overlay(&env)
            .resolve()
            .unwrap();
        assert_eq!(cfg.oauth2_providers.len(), 1);
        let defaults = Config::defaults();
        assert!(defaults.connection_types.is_empty() && defaults.oauth2_providers.is_empty());
    }
}
