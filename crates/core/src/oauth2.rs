//! OAuth2 rules (SPEC §5.1, §6) that need no I/O: how a client
//! authenticates at the token endpoint, which endpoint URLs are acceptable,
//! the presets of well-known providers, how long a pending authorization
//! lives, what a token endpoint's error means for a connection, when to
//! refresh, and how an account is labelled.

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1), the default.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuth {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }
}

crate::text_enum!(ClientAuth, "client_auth");

/// What a provider signs end users in for: a connection type whose catalog
/// `auth` is `oauth2`, or an action connector's app slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProviderTarget {
    ConnectionType(String),
    AppSlug(String),
}

impl ProviderTarget {
    /// The connection type name or app slug.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ConnectionType(s) | Self::AppSlug(s) => s,
        }
    }

    /// `connection_type` or `app_slug`, the field that names it.
    pub fn field(&self) -> &'static str {
        match self {
            Self::ConnectionType(_) => "connection_type",
            Self::AppSlug(_) => "app_slug",
        }
    }
}

/// How long a pending authorization (its `state`) may be completed.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;

/// An access token expiring within this is refreshed before it is revealed.
pub const REVEAL_REFRESH_WITHIN_MS: i64 = 60 * 1000;

/// The background refresher renews tokens expiring within this.
pub const BACKGROUND_REFRESH_WITHIN_MS: i64 = 5 * 60 * 1000;

/// An OAuth2 endpoint: `https://`, or `http://` for a loopback host (local
/// development); no credentials, whitespace or control characters. `Err`
/// says what is wrong.
pub fn check_endpoint(text: &str) -> Result<(), String> {
    let bad = || "must be an https:// URL (http:// only for localhost)".to_string();
    if text.is_empty() {
        return Err(crate::validate::BLANK.into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let url = url::Url::parse(text).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad()),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad()),
    }
}

/// The endpoints of a well-known provider; the operator brings the client
/// id and secret (and scopes). Extra authorization parameters are those a
/// provider needs before it hands out a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub userinfo_url: Option<&'static str>,
    pub issuer: Option<&'static str>,
    pub client_auth: ClientAuth,
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
}

/// Every preset, by name.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "google",
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        userinfo_url: Some("https://openidconnect.googleapis.com/v1/userinfo"),
        issuer: Some("https://accounts.google.com"),
        client_auth: ClientAuth::ClientSecretBasic,
        extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
    },
    Preset {
        name: "github",
        authorize_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        userinfo_url: Some("https://api.github.com/user"),
        issuer: None,
        client_auth: ClientAuth::ClientSecretBasic,
        extra_authorize_params: &[],
    },
    Preset {
        name: "microsoft",
        authorize_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        userinfo_url: Some("https://graph.microsoft.com/oidc/userinfo"),
        issuer: None,
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[],
    },
    Preset {
        name: "slack",
        authorize_url: "https://slack.com/oauth/v2/authorize",
        token_url: "https://slack.com/api/oauth.v2.access",
        userinfo_url: None,
        issuer: None,
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[],
    },
    Preset {
        name: "notion",
        authorize_url: "https://api.notion.com/v1/oauth/authorize",
        token_url: "https://api.notion.com/v1/oauth/token",
        userinfo_url: None,
        issuer: None,
        client_auth: ClientAuth::ClientSecretBasic,
        extra_authorize_params: &[("owner", "user")],
    },
    Preset {
        name: "dropbox",
        authorize_url: "https://www.dropbox.com/oauth2/authorize",
        token_url: "https://api.dropboxapi.com/oauth2/token",
        userinfo_url: None,
        issuer: None,
        client_auth: ClientAuth::ClientSecretBasic,
        extra_authorize_params: &[("token_access_type", "offline")],
    },
    Preset {
        name: "box",
        authorize_url: "https://account.box.com/api/oauth2/authorize",
        token_url: "https://api.box.com/oauth2/token",
        userinfo_url: Some("https://api.box.com/2.0/users/me"),
        issuer: None,
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[],
    },
    Preset {
        name: "hubspot",
        authorize_url: "https://app.hubspot.com/oauth/authorize",
        token_url: "https://api.hubapi.com/oauth/v1/token",
        userinfo_url: None,
        issuer: None,
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[],
    },
    Preset {
        name: "salesforce",
        authorize_url: "https://login.salesforce.com/services/oauth2/authorize",
        token_url: "https://login.salesforce.com/services/oauth2/token",
        userinfo_url: Some("https://login.salesforce.com/services/oauth2/userinfo"),
        issuer: Some("https://login.salesforce.com"),
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[],
    },
    Preset {
        name: "atlassian",
        authorize_url: "https://auth.atlassian.com/authorize",
        token_url: "https://auth.atlassian.com/oauth/token",
        userinfo_url: Some("https://api.atlassian.com/me"),
        issuer: None,
        client_auth: ClientAuth::ClientSecretPost,
        extra_authorize_params: &[("audience", "api.atlassian.com"), ("prompt", "consent")],
    },
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// What a failed refresh means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The provider refused the refresh token (`invalid_grant`): the
    /// connection is expired and the user must connect again.
    Refused,
    /// Anything else (unreachable, timeout, 5xx, a client misconfiguration):
    /// retried later; the connection keeps its state.
    Transient,
}

/// Classifies a token endpoint's OAuth2 error code (RFC 6749 §5.2).
pub fn classify_refresh_error(code: Option<&str>) -> RefreshFailure {
    match code {
        Some("invalid_grant") => RefreshFailure::Refused,
        _ => RefreshFailure::Transient,
    }
}

/// When to try again after `failures` transient refresh failures in a row:
/// 30 s, doubling, at most 30 minutes, with ±10 % jitter from `jitter`
/// (a number in 0..1).
pub fn retry_delay_ms(failures: u32, jitter: f64) -> i64 {
    let base = 30_000_i64
        .saturating_mul(1_i64 << failures.min(6))
        .min(30 * 60 * 1000);
    let spread = (base as f64) * 0.2 * (jitter.clamp(0.0, 1.0) - 0.5);
    base + spread as i64
}

/// When the background refresher should renew a token obtained at `now`
/// that expires at `expires_at`: [`BACKGROUND_REFRESH_WITHIN_MS`] before
/// expiry, or halfway through its life when it lives shorter than twice
/// that (so a short-lived token is not renewed on every pass).
pub fn next_refresh_at(now: i64, expires_at: Option<i64>) -> Option<i64> {
    let at = expires_at?;
    let lifetime = (at - now).max(0);
    Some(at - BACKGROUND_REFRESH_WITHIN_MS.min(lifetime / 2))
}

/// Whether an access token expiring at `expires_at` (Unix ms, `None` for
/// no expiry) must be refreshed at `now` to have `within` ms left.
pub fn needs_refresh(expires_at: Option<i64>, now: i64, within: i64) -> bool {
    expires_at.is_some_and(|at| at - now <= within)
}

/// The label of a linked account: its email, else its name, else its
/// subject (SPEC §6).
pub fn account_label(
    email: Option<&str>,
    name: Option<&str>,
    subject: Option<&str>,
) -> Option<String> {
    [email, name, subject]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

/// Why an OAuth2 callback was refused, as the result page says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackProblem {
    #[error("This sign-in link is missing its state. Start again from the app.")]
    MissingState,
    #[error("This sign-in link is not known. Start again from the app.")]
    UnknownState,
    #[error("This sign-in link has expired. Start again from the app.")]
    ExpiredState,
    #[error("This sign-in link was already used. Start again from the app.")]
    ReplayedState,
    #[error("You did not grant access. Nothing was changed.")]
    ConsentDenied,
    #[error("The provider reported an error ({0}). Nothing was changed.")]
    ProviderError(String),
    #[error("The answer did not come from the expected provider. Nothing was changed.")]
    WrongIssuer,
    #[error("The provider did not return an authorization code.")]
    MissingCode,
    #[error("The provider could not be reached to finish signing in. Try again.")]
    ExchangeFailed,
    #[error("This requirement is already connected; this link can only connect one that is not. Nothing was changed.")]
    AlreadyConnected,
}

impl CallbackProblem {
    /// A provider's `error` parameter: `access_denied` is consent denied;
    /// any other value is named (only if it is a plain error code).
    pub fn from_provider(error: &str) -> Self {
        if error == "access_denied" {
            return Self::ConsentDenied;
        }
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        Self::ProviderError(if code.is_empty() {
            "unknown".into()
        } else {
            code
        })
    }

    /// A short stable label for metrics and audit events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingState => "missing_state",
            Self::UnknownState => "unknown_state",
            Self::ExpiredState => "expired_state",
            Self::ReplayedState => "replayed_state",
            Self::ConsentDenied => "consent_denied",
            Self::ProviderError(_) => "provider_error",
            Self::WrongIssuer => "wrong_issuer",
            Self::MissingCode => "missing_code",
            Self::ExchangeFailed => "exchange_failed",
            Self::AlreadyConnected => "already_connected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// https anywhere, http on loopback only, never credentials.
    #[test]
    fn endpoints() {
        for ok in [
            "https://idp.example.com:8443/oauth/token?x=1",
            "http://localhost:9000/token",
            "http://127.0.0.1/token",
            "http://[::1]:8080/token",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost.evil.com/token",
            "http://10.0.0.1/token",
            "ftp://example.com/token",
            "https://",
            "https://user@host/token",
            "https://host:port/token",
            "https://a.example/to ken",
            "",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    /// Every preset named in SPEC §5.1 exists with valid endpoints.
    #[test]
    fn presets_are_complete() {
        for name in [
            "google",
            "github",
            "microsoft",
            "slack",
            "notion",
            "dropbox",
            "box",
            "hubspot",
            "salesforce",
            "atlassian",
        ] {
            let p = preset(name).unwrap_or_else(|| panic!("{name}"));
            assert!(check_endpoint(p.authorize_url).is_ok(), "{name}");
            assert!(check_endpoint(p.token_url).is_ok(), "{name}");
            if let Some(u) = p.userinfo_url {
                assert!(check_endpoint(u).is_ok(), "{name}");
            }
        }
        assert!(preset("myspace").is_none());
    }

    /// Only invalid_grant expires a connection.
    #[test]
    fn refresh_errors() {
        assert_eq!(
            classify_refresh_error(Some("invalid_grant")),
            RefreshFailure::Refused
        );
        assert_eq!(
            classify_refresh_error(Some("invalid_client")),
            RefreshFailure::Transient
        );
        assert_eq!(classify_refresh_error(None), RefreshFailure::Transient);
    }

    /// Retries back off from 30 s to 30 min, within ±10 %.
    #[test]
    fn retry_backoff() {
        assert_eq!(retry_delay_ms(0, 0.5), 30_000);
        assert_eq!(retry_delay_ms(1, 0.5), 60_000);
        assert_eq!(retry_delay_ms(20, 0.5), 30 * 60 * 1000);
        assert_eq!(retry_delay_ms(0, 0.0), 27_000);
        assert_eq!(retry_delay_ms(0, 1.0), 33_000);
    }

    /// Refresh when the remaining lifetime is within the window.
    #[test]
    fn refresh_due() {
        assert!(needs_refresh(Some(1_060_000), 1_000_000, 60_000));
        assert!(!needs_refresh(Some(1_060_001), 1_000_000, 60_000));
        assert!(!needs_refresh(None, 1_000_000, 60_000));
    }

    /// Long tokens renew five minutes ahead, short ones halfway.
    #[test]
    fn next_refresh() {
        let now = 1_000_000;
        assert_eq!(
            next_refresh_at(now, Some(now + 3_600_000)),
            Some(now + 3_300_000)
        );
        assert_eq!(
            next_refresh_at(now, Some(now + 120_000)),
            Some(now + 60_000)
        );
        assert_eq!(next_refresh_at(now, Some(now - 5)), Some(now - 5));
        assert_eq!(next_refresh_at(now, None), None);
    }

    /// Labels prefer email, then name, then subject.
    #[test]
    fn labels() {
        assert_eq!(
            account_label(Some("a@example.com"), Some("A"), Some("1")).as_deref(),
            Some("a@example.com")
        );
        assert_eq!(
            account_label(Some(" "), Some("Ada"), Some("1")).as_deref(),
            Some("Ada")
        );
        assert_eq!(
            account_label(None, None, Some("sub-1")).as_deref(),
            Some("sub-1")
        );
        assert_eq!(account_label(None, None, None), None);
    }

    /// Provider errors are named by their code only; access_denied is a
    /// denied consent.
    #[test]
    fn callback_problems() {
        assert_eq!(
            CallbackProblem::from_provider("access_denied"),
            CallbackProblem::ConsentDenied
        );
        assert_eq!(
            CallbackProblem::from_provider("server_error<script>"),
            CallbackProblem::ProviderError("server_errorscript".into())
        );
        assert!(CallbackProblem::ExpiredState
            .to_string()
            .contains("expired"));
    }
}
