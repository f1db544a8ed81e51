//! Configuration layers (SPEC §10): defaults < `gatehouse.toml` <
//! `GATEHOUSE_<KEY>` environment variables < command-line flags. Each layer
//! is a TOML table of the keys it sets; layers are merged key by key and
//! the result is read once into a [`RawConfig`], then checked into a
//! [`Config`].

use std::{collections::HashMap, net::SocketAddr, path::Path, path::PathBuf};

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use gatehouse_core::forwarded::TrustedProxies;

use super::{
    limits::{self, RawRateLimits, ScheduleValue},
    oauth2, Config, LogFormat, RawOAuth2Provider,
};
use crate::catalog::{Catalog, ConnectionTypeConfig};

/// Every key as it may appear in `gatehouse.toml`, the environment or a
/// flag; `None` means "not set".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub public_url: Option<String>,
    pub apps_domain: Option<String>,
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<String>,
    pub log_format: Option<String>,
    pub access_key_prefix: Option<String>,
    pub pat_prefix: Option<String>,
    pub max_body_bytes: Option<TomlScalar>,
    pub max_header_bytes: Option<TomlScalar>,
    pub trust_forwarded_headers: Option<TomlScalar>,
    pub last_used_flush_seconds: Option<TomlScalar>,
    pub audit_retention_days: Option<TomlScalar>,
    pub header_read_timeout_seconds: Option<TomlScalar>,
    pub request_timeout_seconds: Option<TomlScalar>,
    pub idle_timeout_seconds: Option<TomlScalar>,
    pub max_connections: Option<TomlScalar>,
    pub metrics_token: Option<SecretString>,
    pub trusted_proxies: Option<StringList>,
    pub allow_private_webhook_targets: Option<TomlScalar>,
    pub webhook_retry_schedule_seconds: Option<ScheduleValue>,
    /// File only.
    pub rate_limits: Option<RawRateLimits>,
    /// File only.
    pub connection_types: Option<Vec<ConnectionTypeConfig>>,
    /// File only.
    pub oauth2_providers: Option<std::collections::BTreeMap<String, RawOAuth2Provider>>,
}

/// The keys that may also come from `GATEHOUSE_<KEY>` variables and flags:
/// every key but the tables.
pub const SCALAR_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "redis_url",
    "public_url",
    "apps_domain",
    "master_key",
    "master_key_file",
    "log_format",
    "access_key_prefix",
    "pat_prefix",
    "max_body_bytes",
    "max_header_bytes",
    "trust_forwarded_headers",
    "last_used_flush_seconds",
    "audit_retention_days",
    "header_read_timeout_seconds",
    "request_timeout_seconds",
    "idle_timeout_seconds",
    "max_connections",
    "metrics_token",
    "trusted_proxies",
    "allow_private_webhook_targets",
    "webhook_retry_schedule_seconds",
];

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

/// A list of strings: a TOML array, or comma-separated (environment,
/// flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringList {
    List(Vec<String>),
    Text(String),
}

impl StringList {
    fn items(&self) -> Vec<String> {
        match self {
            StringList::List(v) => v.clone(),
            StringList::Text(s) => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }
}

/// The keys one layer sets.
#[derive(Debug, Clone, Default)]
pub struct Layer(toml::Table);

impl Layer {
    /// A `gatehouse.toml`; an unknown key or a value of the wrong shape is
    /// an error naming the file and the key.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }

    /// A layer from TOML text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let table: toml::Table = toml::from_str(text)?;
        RawConfig::deserialize(table.clone())?;
        Ok(Self(table))
    }

    /// `GATEHOUSE_<KEY>` variables from `vars`, for every scalar key (the
    /// tables `connection_types` and `oauth2_providers` are file only).
    pub fn from_env(vars: &HashMap<String, String>) -> Self {
        Self::from_pairs(SCALAR_KEYS.iter().map(|key| {
            let var = format!("GATEHOUSE_{}", key.to_ascii_uppercase());
            (*key, vars.get(&var).cloned())
        }))
    }

    /// The keys that are `Some` (command-line flags).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> Self {
        Self(
            pairs
                .into_iter()
                .filter_map(|(key, value)| Some((key.to_string(), toml::Value::String(value?))))
                .collect(),
        )
    }

    /// This layer with `top` laid over it: every key `top` sets wins.
    pub fn under(mut self, top: Layer) -> Self {
        self.0.extend(top.0);
        self
    }

    /// Applies the defaults and checks every value.
    pub fn resolve(self) -> anyhow::Result<Config> {
        RawConfig::deserialize(self.0)
            .context("invalid configuration")?
            .resolve()
    }
}

impl RawConfig {
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
            if url.starts_with("rediss://") {
                bail!("invalid redis_url: rediss:// (TLS) is not supported; use redis:// (over a private network or a TLS tunnel)");
            }
            if !url.starts_with("redis://") {
                bail!("invalid redis_url: must start with redis://");
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
            master_key: self.master_key,
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
            header_read_timeout_seconds: number(
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
                10,
                1,
                3600,
            )? as u64,
            request_timeout_seconds: number(
                "request_timeout_seconds",
                self.request_timeout_seconds,
                30,
                1,
                3600,
            )? as u64,
            idle_timeout_seconds: number(
                "idle_timeout_seconds",
                self.idle_timeout_seconds,
                60,
                1,
                3600,
            )? as u64,
            max_connections: number(
                "max_connections",
                self.max_connections,
                10_000,
                1,
                1_000_000,
            )?,
            trusted_proxies: match self.trusted_proxies {
                None => TrustedProxies::default(),
                Some(list) => TrustedProxies::parse(&list.items())
                    .map_err(|e| anyhow::anyhow!("invalid trusted_proxies: {e}"))?,
            },
            metrics_token: match self.metrics_token {
                Some(t) if t.expose_secret().len() < 16 => {
                    bail!("invalid metrics_token: must be at least 16 characters")
                }
                other => other,
            },
            audit_retention_days: number(
                "audit_retention_days",
                self.audit_retention_days,
                90,
                1,
                36_500,
            )? as u32,
            allow_private_webhook_targets: boolean(
                "allow_private_webhook_targets",
                self.allow_private_webhook_targets,
                false,
            )?,
            webhook_retry_schedule_seconds: limits::retry_schedule(
                self.webhook_retry_schedule_seconds,
            )?,
            rate_limits: self.rate_limits.unwrap_or_default().resolve()?,
            connection_types: self.connection_types.unwrap_or_default(),
            oauth2_providers: oauth2::providers(self.oauth2_providers.unwrap_or_default())?,
        };
        oauth2::check_targets(
            &config,
            &Catalog::with_additions(config.connection_types.clone())?,
        )?;
        Ok(config)
    }
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
