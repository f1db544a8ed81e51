//! OAuth2 tokens at rest and kept fresh. A connection's sealed config is
//! its [`TokenSet`] (AEAD under the master key, the row id as associated
//! data). A token expiring within a minute is refreshed before it is
//! revealed; the background refresher renews tokens a few minutes ahead.
//! Either way one refresh runs at a time per connection, across nodes: the
//! refresher takes a lease on the row first, and whoever finds the lease
//! taken waits for its holder's result instead of spending the refresh
//! token a second time.

use std::time::Duration;

use gatehouse_core::{
    oauth2::{
        classify_refresh_error, needs_refresh, next_refresh_at, retry_delay_ms, RefreshFailure,
        BACKGROUND_REFRESH_WITHIN_MS, REVEAL_REFRESH_WITHIN_MS,
    },
    time::{format_ms, now_ms},
};
use gatehouse_store::{connect::ConnectionRow, effects::Effects, oauth::Refreshed};
use oauth2::{RefreshToken, TokenResponse as _};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    client::{oauth_client, redirect_uri, TokenResponse},
    providers,
};
use crate::{
    error::{ApiError, ApiResult},
    service::{
        audit::{self, Actor, Origin},
        principal::app_reach,
        webhooks::events,
        Services,
    },
};

/// How long a node may hold a connection's refresh lease.
const LEASE_MS: i64 = 30_000;
/// How long a reveal waits for another node's refresh to finish.
const WAIT_FOR_LEASE: Duration = Duration::from_secs(12);
/// How many connections the background refresher renews at once.
const REFRESH_CONCURRENCY: usize = 4;
/// How often the background refresher looks for tokens to renew.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15);

/// The refresher, as the audit trail names it.
const REFRESHER: Actor<'static> = Actor {
    kind: "system",
    id: "oauth2_refresher",
};

/// The tokens of an OAuth2 connection or account, as sealed. `Debug`
/// prints neither token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSet {
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_option"
    )]
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    /// Unix ms; stored as RFC 3339 (the catalog's `expires_at`).
    #[serde(default, with = "rfc3339_option")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn expose<S: serde::Serializer>(s: &SecretString, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(s.expose_secret())
}

fn expose_option<S: serde::Serializer>(
    s: &Option<SecretString>,
    out: S,
) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => out.serialize_str(s.expose_secret()),
        None => out.serialize_none(),
    }
}

mod rfc3339_option {
    use gatehouse_core::time::{format_ms, parse_rfc3339};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&format_ms(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text.as_deref().and_then(parse_rfc3339))
    }
}

impl TokenSet {
    /// The tokens a token endpoint answered at `now`; a response without a
    /// refresh token keeps `previous` (refresh tokens need not rotate).
    pub fn from_response(r: &TokenResponse, now: i64, previous: Option<SecretString>) -> Self {
        Self {
            access_token: SecretString::from(r.access_token().secret().to_string()),
            refresh_token: r
                .refresh_token()
                .map(|t| SecretString::from(t.secret().to_string()))
                .or(previous),
            token_type: r.token_type().as_ref().to_ascii_lowercase(),
            expires_at: r
                .expires_in()
                .map(|d| now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)),
            scope: r
                .scopes()
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
        }
    }

    /// Sealed for the row `row_id`: the master key id and the blob.
    pub fn seal(&self, svc: &Services, row_id: &str) -> ApiResult<(String, Vec<u8>)> {
        let plain =
            secrecy::zeroize::Zeroizing::new(serde_json::to_vec(self).map_err(ApiError::internal)?);
        Ok(svc.keyring().seal(&plain, row_id.as_bytes())?)
    }

    /// The tokens sealed in a connection row.
    pub fn open(svc: &Services, row: &ConnectionRow) -> ApiResult<Self> {
        let (Some(sealed), Some(key_id)) =
            (row.sealed_config.as_deref(), row.master_key_id.as_deref())
        else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "connection {} has no sealed tokens",
                row.id
            )));
        };
        let plain = svc.keyring().open(key_id, sealed, row.id.as_bytes())?;
        serde_json::from_slice(&plain).map_err(ApiError::internal)
    }

    /// What the reveal route shows: never the refresh token.
    pub fn revealed(&self, label: Option<&str>) -> Value {
        let mut config = json!({
            "access_token": self.access_token.expose_secret(),
            "token_type": self.token_type,
            "expires_at": self.expires_at.map(format_ms),
            "scope": self.scope,
        });
        if let Some(label) = label {
            config["label"] = json!(label);
        }
        config
    }
}

/// How one refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Refreshed,
    /// The provider refused the refresh token; the connection is expired.
    Expired,
    /// Not refreshed now (provider unreachable, no provider any more);
    /// tried again later.
    Retry,
    /// Nothing to do (not due, not active, no refresh token yet valid).
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Refreshed => "refreshed",
            Outcome::Expired => "expired",
            Outcome::Retry => "retry",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The reveal config of an OAuth2 connection or account: its access token,
/// refreshed first when it expires within a minute. `None` when there is
/// no usable token (expired and not refreshable now); never an error for
/// a provider that cannot be reached.
pub async fn reveal(svc: &Services, row: &ConnectionRow) -> ApiResult<Option<Value>> {
    let now = now_ms();
    let row = if needs_refresh(row.access_expires_at, now, REVEAL_REFRESH_WITHIN_MS) {
        refresh_now(svc, &row.id, row.access_expires_at).await?;
        match svc.store().connection(&row.id).await? {
            Some(r) => r,
            None => return Ok(None),
        }
    } else {
        row.clone()
    };
    if row.status != gatehouse_core::ConnectionStatus::Active {
        return Ok(None);
    }
    let tokens = TokenSet::open(svc, &row)?;
    if tokens.expires_at.is_some_and(|at| at <= now_ms()) {
        return Ok(None);
    }
    Ok(Some(tokens.revealed(row.label.as_deref())))
}

/// Refreshes a connection now, or waits for the node already refreshing it
/// and uses what it stored. `seen` is the access token's expiry as the
/// caller read it: once it changed, someone else refreshed.
async fn refresh_now(svc: &Services, id: &str, seen: Option<i64>) -> ApiResult<Outcome> {
    let deadline = std::time::Instant::now() + WAIT_FOR_LEASE;
    loop {
        let now = now_ms();
        if svc
            .store()
            .take_refresh_lease(id, now, now + LEASE_MS)
            .await?
        {
            // Taken: unless a refresh finished between our read and now.
            let current = svc.store().connection(id).await?;
            if current.is_some_and(|c| c.access_expires_at != seen) {
                svc.store().schedule_refresh(id, now).await?;
                return Ok(Outcome::Skipped);
            }
            return refresh_leased(svc, id).await;
        }
        match svc.store().connection(id).await? {
            Some(row)
                if row.status == gatehouse_core::ConnectionStatus::Active
                    && row.access_expires_at == seen
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return Ok(Outcome::Skipped),
        }
    }
}

/// Refreshes a connection whose lease this node holds, and releases it.
#[tracing::instrument(skip_all, fields(connection = %id))]
async fn refresh_leased(svc: &Services, id: &str) -> ApiResult<Outcome> {
    let started = std::time::Instant::now();
    let outcome = run_refresh(svc, id).await;
    let label = match &outcome {
        Ok(o) => o.label(),
        Err(_) => "error",
    };
    metrics::counter!("gatehouse_oauth2_refreshes_total", "outcome" => label).increment(1);
    metrics::histogram!("gatehouse_oauth2_refresh_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    if outcome.is_err() {
        // Release the lease so a later try is not blocked for its length.
        let retry = now_ms() + retry_delay_ms(0, rand::rng().random());
        svc.store()
            .record_refresh_failure(
                id,
                "the refresh could not be completed",
                retry,
                &Effects::default(),
            )
            .await?;
    }
    outcome
}

async fn run_refresh(svc: &Services, id: &str) -> ApiResult<Outcome> {
    let Some(row) = svc.store().connection(id).await? else {
        return Ok(Outcome::Skipped);
    };
    let now = now_ms();
    let tokens = TokenSet::open(svc, &row)?;
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        if tokens.expires_at.is_some_and(|at| at <= now) {
            expire(
                svc,
                &row,
                "the access token expired and the provider gave no refresh token",
            )
            .await?;
            return Ok(Outcome::Expired);
        }
        // Valid until it expires; look again then.
        let at = tokens
            .expires_at
            .unwrap_or(now + BACKGROUND_REFRESH_WITHIN_MS);
        svc.store().schedule_refresh(id, at).await?;
        return Ok(Outcome::Skipped);
    };
    let reference = row.provider_ref.clone().unwrap_or_default();
    let Some(provider) = providers::by_reference(svc, &reference, &row.environment_id).await?
    else {
        return retry(
            svc,
            &row,
            "the OAuth2 provider is no longer configured".into(),
        )
        .await;
    };
    let endpoints = match svc.oauth2_http().endpoints(&provider.settings).await {
        Ok(e) => e,
        Err(e) => return retry(svc, &row, e.to_string()).await,
    };
    let client = match oauth_client(&provider.settings, &endpoints, &redirect_uri(svc)) {
        Ok(c) => c,
        Err(e) => return retry(svc, &row, e.to_string()).await,
    };
    let secret = RefreshToken::new(refresh_token.expose_secret().to_string());
    let answer = client
        .exchange_refresh_token(&secret)
        .request_async(svc.oauth2_http().http())
        .await;
    match answer {
        Ok(response) => {
            let fresh = TokenSet::from_response(&response, now_ms(), Some(refresh_token));
            let (master_key_id, sealed_config) = fresh.seal(svc, &row.id)?;
            svc.store()
                .store_refreshed(
                    id,
                    &Refreshed {
                        sealed_config,
                        master_key_id,
                        access_expires_at: fresh.expires_at,
                        has_refresh_token: fresh.refresh_token.is_some(),
                        next_refresh_at: next_refresh_at(now_ms(), fresh.expires_at),
                    },
                )
                .await?;
            Ok(Outcome::Refreshed)
        }
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            let code = e.error().as_ref().to_string();
            match classify_refresh_error(Some(&code)) {
                RefreshFailure::Refused => {
                    expire(
                        svc,
                        &row,
                        "the provider refused the refresh token (invalid_grant)",
                    )
                    .await?;
                    Ok(Outcome::Expired)
                }
                RefreshFailure::Transient => {
                    let code: String = code
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .take(64)
                        .collect();
                    retry(
                        svc,
                        &row,
                        format!("the provider refused the refresh ({code})"),
                    )
                    .await
                }
            }
        }
        Err(oauth2::RequestTokenError::Request(_)) => {
            retry(svc, &row, "the provider could not be reached".into()).await
        }
        Err(_) => retry(svc, &row, "the provider's answer could not be read".into()).await,
    }
}

/// Records a transient failure: the error, the next try (backing off),
/// and an audit event.
async fn retry(svc: &Services, row: &ConnectionRow, message: String) -> ApiResult<Outcome> {
    let failures = u32::try_from(row.refresh_failures).unwrap_or(0);
    let next = now_ms() + retry_delay_ms(failures, rand::rng().random());
    let effects = refresher_effects(svc, row, "connection.refresh_failed").await?;
    svc.store()
        .record_refresh_failure(&row.id, &message, next, &effects)
        .await?;
    Ok(Outcome::Retry)
}

/// Marks a connection expired and audits it.
async fn expire(svc: &Services, row: &ConnectionRow, reason: &str) -> ApiResult<()> {
    let effects = refresher_effects(svc, row, "connection.expired")
        .await?
        .announce(events::of_connection("connection.expired", row));
    svc.store()
        .expire_connection(&row.id, reason, &effects)
        .await?;
    Ok(())
}

/// The audit event of the refresher's `action` on a connection.
async fn refresher_effects(
    svc: &Services,
    row: &ConnectionRow,
    action: &str,
) -> ApiResult<Effects> {
    let Some(app) = svc.store().app(&row.app_id).await? else {
        return Ok(Effects::default());
    };
    let target = row.kind.as_str();
    Ok(audit::effects(
        REFRESHER,
        action,
        (target, &row.id),
        &app_reach(&app),
        &Origin::default(),
    ))
}

/// One pass of the background refresher: renews the tokens expiring in
/// the next few minutes, a few at a time, each after a short random delay
/// so that nodes do not move in step.
pub async fn refresh_due(svc: &Services) -> ApiResult<usize> {
    let due = svc
        .store()
        .due_for_refresh(now_ms(), BACKGROUND_REFRESH_WITHIN_MS, 100)
        .await?;
    let count = due.len();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(REFRESH_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for row in due {
        let (svc, gate) = (svc.clone(), gate.clone());
        tasks.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return;
            };
            let jitter = rand::rng().random_range(0..500);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            let now = now_ms();
            match svc.store().take_refresh_lease(&row.id, now, now + LEASE_MS).await {
                Ok(true) => {
                    if let Err(err) = refresh_leased(&svc, &row.id).await {
                        tracing::warn!(error = %err, connection = %row.id, "background refresh failed");
                    }
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "could not take a refresh lease"),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(count)
}

/// Runs [`refresh_due`] every [`REFRESH_EVERY`] until the task is dropped,
/// and forgets pending authorizations that expired.
pub async fn run_refresher(svc: Services) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = refresh_due(&svc).await {
            tracing::warn!(error = %err, "the OAuth2 refresher could not run");
        }
        if let Err(err) = svc.store().purge_flows(now_ms() - 3_600_000).await {
            tracing::warn!(error = %err, "could not forget expired OAuth2 authorizations");
        }
    }
}
