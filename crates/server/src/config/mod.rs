//! Configuration (SPEC §10): the resolved settings every other part reads.
//! [`layers`] reads and merges defaults < `gatehouse.toml` <
//! `GATEHOUSE_<KEY>` < flags; [`oauth2`] checks the OAuth2 providers. An
//! invalid value stops start-up with a message naming the key. The catalog
//! additions (`[[connection_types]]`), OAuth2 providers
//! (`[oauth2_providers.<name>]`) and `[rate_limits]` ([`limits`]) are
//! tables, so they come from the file only.

pub mod layers;
pub mod limits;
pub mod oauth2;

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use gatehouse_core::oauth2::ProviderTarget;
use secrecy::SecretString;

pub use layers::{Layer, RawConfig, TomlScalar};
pub use limits::{RateLimits, Rule};
pub use oauth2::{
    OAuth2ProviderConfig, ProviderSettings, RawOAuth2Provider, SettingsError, SettingsInput,
};

use crate::catalog::ConnectionTypeConfig;

/// `text` (human) or `json` (one object per line) logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration. Its `Debug` form hides the passwords a
/// database or Redis URL may carry (the secrets are `SecretString`s).
#[derive(Clone)]
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
    /// How long a client may take to send a request's headers.
    pub header_read_timeout_seconds: u64,
    /// How long a request may take, its body included.
    pub request_timeout_seconds: u64,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout_seconds: u64,
    /// Open connections at most; past it, new ones get a 503.
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-*` headers are believed (with
    /// `trust_forwarded_headers`); empty: the direct peer only.
    pub trusted_proxies: gatehouse_core::forwarded::TrustedProxies,
    /// When set, `/metrics` needs `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<SecretString>,
    /// Audit events older than this many days are pruned.
    pub audit_retention_days: u32,
    /// Whether webhook targets may be loopback or private addresses.
    pub allow_private_webhook_targets: bool,
    /// Delay before each retry of a failed webhook delivery (seconds).
    pub webhook_retry_schedule_seconds: Vec<u64>,
    /// `[rate_limits]`.
    pub rate_limits: RateLimits,
    /// `[[connection_types]]`: additions to the built-in catalog, already
    /// checked to compile (see [`Catalog::from_config`]).
    pub connection_types: Vec<ConnectionTypeConfig>,
    /// `[oauth2_providers.<name>]`, by name.
    pub oauth2_providers: BTreeMap<String, OAuth2ProviderConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &without_password(&self.database_url))
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(without_password),
            )
            .field("public_url", &self.public_url)
            .field("apps_domain", &self.apps_domain)
            .field("master_key", &self.master_key)
            .field("master_key_file", &self.master_key_file)
            .field("log_format", &self.log_format)
            .field("access_key_prefix", &self.access_key_prefix)
            .field("pat_prefix", &self.pat_prefix)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("trust_forwarded_headers", &self.trust_forwarded_headers)
            .field(
                "header_read_timeout_seconds",
                &self.header_read_timeout_seconds,
            )
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("idle_timeout_seconds", &self.idle_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("metrics_token", &self.metrics_token)
            .field(
                "allow_private_webhook_targets",
                &self.allow_private_webhook_targets,
            )
            .field("last_used_flush_seconds", &self.last_used_flush_seconds)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("audit_retention_days", &self.audit_retention_days)
            .field(
                "webhook_retry_schedule_seconds",
                &self.webhook_retry_schedule_seconds,
            )
            .field("rate_limits", &self.rate_limits)
            .field("connection_types", &self.connection_types)
            .field("oauth2_providers", &self.oauth2_providers)
            .finish()
    }
}

/// `url` with any password replaced (a URL that does not parse is hidden
/// whole: it might be a password in the wrong place).
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("[REDACTED]"));
            }
            parsed.to_string()
        }
        Err(_) => "[REDACTED]".to_string(),
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
        target: &ProviderTarget,
    ) -> Option<(&str, &OAuth2ProviderConfig)> {
        let candidates = || {
            self.oauth2_providers
                .iter()
                .filter(|(_, p)| &p.target == target)
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
    use std::collections::HashMap;

    use super::*;

    /// Printing the configuration never shows a database or Redis password.
    #[test]
    fn debug_hides_url_passwords() {
        let mut cfg = Config::defaults();
        cfg.database_url = "postgres://gh:s3cret-pw@db.internal:5432/gatehouse".into();
        cfg.redis_url = Some("redis://:r3dis-pw@cache:6379/0".into());
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("s3cret-pw"), "{printed}");
        assert!(!printed.contains("r3dis-pw"), "{printed}");
        assert!(printed.contains("db.internal"), "{printed}");
        assert_eq!(without_password("not a url s3cret"), "[REDACTED]");
        assert_eq!(
            without_password("sqlite:///data/g.db"),
            "sqlite:///data/g.db"
        );
    }

    /// Layers apply in order: defaults < file < environment < flags.
    #[test]
    fn layering_order() {
        let file = Layer::from_toml(
            "listen = \"127.0.0.1:9000\"\nmax_body_bytes = 2048\npat_prefix = \"acme_pat_\"",
        )
        .unwrap();
        let env = Layer::from_env(&HashMap::from([
            ("GATEHOUSE_LISTEN".to_string(), "127.0.0.1:9100".to_string()),
            ("GATEHOUSE_LOG_FORMAT".to_string(), "json".to_string()),
            (
                "GATEHOUSE_TEST_POSTGRES_URL".to_string(),
                "ignored".to_string(),
            ),
        ]));
        let flags =
            Layer::from_pairs([("data_dir", Some("/tmp/gh".to_string())), ("listen", None)]);
        let cfg = Layer::default()
            .under(file)
            .under(env)
            .under(flags)
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
        let unknown = format!("{:#}", Layer::from_toml("listne = \"x\"").unwrap_err());
        assert!(unknown.contains("listne"), "{unknown}");
    }

    /// `[rate_limits]` from the file, the webhook keys from anywhere.
    #[test]
    fn limits_and_webhook_keys() {
        let file = Layer::from_toml(
            "audit_retention_days = 7\nwebhook_retry_schedule_seconds = [1, 2]\n[rate_limits]\nip = { limit = 5, window_seconds = 10 }",
        )
        .unwrap();
        let env = Layer::from_env(&HashMap::from([
            (
                "GATEHOUSE_ALLOW_PRIVATE_WEBHOOK_TARGETS".to_string(),
                "true".to_string(),
            ),
            (
                "GATEHOUSE_WEBHOOK_RETRY_SCHEDULE_SECONDS".to_string(),
                "3,4,5".to_string(),
            ),
        ]));
        let cfg = Layer::default().under(file).under(env).resolve().unwrap();
        assert_eq!(cfg.audit_retention_days, 7);
        assert!(cfg.allow_private_webhook_targets);
        assert_eq!(cfg.webhook_retry_schedule_seconds, vec![3, 4, 5]);
        assert_eq!(
            cfg.rate_limits.ip,
            Rule {
                limit: 5,
                window_seconds: 10
            }
        );
        assert_eq!(cfg.rate_limits.sign_in, Rule::per_minute(10));
        let defaults = Config::defaults();
        assert_eq!(defaults.audit_retention_days, 90);
        assert!(!defaults.allow_private_webhook_targets);
        let bad = format!(
            "{:#}",
            Layer::from_toml("[rate_limits]\ncredential = { limit = 10 }").unwrap_err()
        );
        assert!(bad.contains("window_seconds"), "{bad}");
    }

    /// The tables come from the file only; the defaults have none.
    #[test]
    fn tables_are_file_only() {
        let env = Layer::from_env(&HashMap::from([(
            "GATEHOUSE_OAUTH2_PROVIDERS".to_string(),
            "x".to_string(),
        )]));
        let file = Layer::from_toml(oauth2::tests::CATALOG_AND_PROVIDER).unwrap();
        let cfg = Layer::default().under(file).under(env).resolve().unwrap();
        assert_eq!(cfg.oauth2_providers.len(), 1);
        let defaults = Config::defaults();
        assert!(defaults.connection_types.is_empty() && defaults.oauth2_providers.is_empty());
    }
}
