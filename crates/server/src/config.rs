//! Configuration (SPEC §10): defaults < `gatehouse.toml` <
//! `GATEHOUSE_<KEY>` environment variables < command-line flags. An invalid
//! value stops start-up with a message naming the key.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use secrecy::SecretString;
use serde::Deserialize;

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
            trust_forwarded_headers, last_used_flush_seconds)
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

    /// Reads `GATEHOUSE_<KEY>` variables from `vars`.
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
        }
    }

    /// Applies defaults and checks every value.
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
        Ok(Config {
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
        })
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

impl Config {
    /// The configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        RawConfig::default().resolve().expect("defaults are valid")
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
}
