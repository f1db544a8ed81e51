//! Webhooks (SPEC §9): signed deliveries of what happened in an
//! environment. Events are written to an outbox in the transaction of the
//! change they report ([`events`]); the [`delivery`] worker fans them out
//! to the environment's webhooks and delivers them with retries, signed
//! per Standard Webhooks ([`signing`]), to targets checked by [`target`].
//! This module is the management of webhooks themselves.

pub mod delivery;
pub mod events;
pub mod signing;
pub mod target;

use gatehouse_core::{
    new_id,
    time::now_ms,
    validate::BLANK,
    webhook::{self, TargetError},
    IdKind, Reach,
};
use gatehouse_store::{
    webhooks::{DeliveryRow, WebhookFilter, WebhookRow},
    Page, PageRequest,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    audit::{self, Origin},
    principal::Principal,
    schema::EventType,
    visibility, Services,
};
use crate::error::{ApiError, ApiResult};

/// How long the previous secret keeps signing after a rotation, so
/// receivers can switch without missing a delivery.
pub const PREVIOUS_SECRET_TTL_MS: i64 = 24 * 3600 * 1000;
/// The longest description.
const MAX_DESCRIPTION: usize = 500;

/// A webhook as the API shows it (no secret).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub row: WebhookRow,
    pub events: Vec<String>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        let events = row.events.split_whitespace().map(str::to_string).collect();
        Self { row, events }
    }
}

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// The environment whose events it receives (default: the caller's
    /// environment, for an environment-scoped key).
    pub environment_id: Option<String>,
    /// `https://…` (or `http://…`); loopback and private addresses are
    /// refused unless `allow_private_webhook_targets`.
    #[schema(value_type = String, required = true)]
    pub url: Option<String>,
    /// Event types, e.g. `["connection.created"]`.
    #[schema(value_type = Vec<EventType>, required = true, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// At most 500 characters.
    pub description: Option<String>,
}

/// Body of `PATCH /v1/webhooks/{id}`: fields left out keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<EventType>>, min_items = 1)]
    pub events: Option<Vec<String>>,
    /// `true` also clears a disabled webhook's failure record.
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
fn new_secret() -> SecretString {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let bytes: [u8; 32] = rand::random();
    SecretString::from(format!(
        "{}{}",
        webhook::SECRET_PREFIX,
        STANDARD.encode(bytes)
    ))
}

fn seal(svc: &Services, id: &str, secret: &SecretString) -> ApiResult<(String, Vec<u8>)> {
    Ok(svc
        .keyring()
        .seal(secret.expose_secret().as_bytes(), id.as_bytes())?)
}

fn target_error(e: TargetError) -> ApiError {
    ApiError::field("url", e.to_string())
}

/// The checked target: the URL rules, then (unless private targets are
/// allowed) the addresses its name resolves to right now.
async fn check_url(svc: &Services, raw: Option<&str>) -> ApiResult<String> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    let raw = raw.ok_or_else(|| ApiError::field("url", BLANK))?;
    let allow = svc.config().allow_private_webhook_targets;
    let url = webhook::parse_target(raw, allow).map_err(target_error)?;
    if !allow {
        target::check_resolved(&url).await.map_err(target_error)?;
    }
    Ok(url.to_string())
}

fn check_events(events: Option<&[String]>) -> ApiResult<String> {
    let events = events.ok_or_else(|| ApiError::field("events", BLANK))?;
    let events = webhook::parse_events(events).map_err(|m| ApiError::field("events", m))?;
    Ok(events.join(" "))
}

fn check_description(d: Option<String>) -> ApiResult<Option<String>> {
    let d = d.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::field(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(d)
}

fn reach_of(row: &WebhookRow) -> Reach {
    Reach::environment(&row.organization_id, &row.project_id, &row.environment_id)
}

/// Creates a webhook; the answer holds its secret, the only time it is
/// shown.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn create(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    body: CreateWebhook,
) -> ApiResult<(Webhook, SecretString)> {
    let env_id = body
        .environment_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| caller.reach.environment_id.clone())
        .ok_or_else(|| ApiError::field("environment_id", BLANK))?;
    let env = visibility::environment(svc, &caller.reach, &env_id).await?;
    let url = check_url(svc, body.url.as_deref()).await?;
    let events = check_events(body.events.as_deref())?;
    let description = check_description(body.description)?;
    let id = new_id(IdKind::Webhook);
    let secret = new_secret();
    let (master_key_id, secret_sealed) = seal(svc, &id, &secret)?;
    let now = now_ms();
    let row = WebhookRow {
        id,
        organization_id: env.organization_id.clone(),
        project_id: env.project_id.clone(),
        environment_id: env.id.clone(),
        url,
        events,
        description,
        secret_sealed,
        master_key_id,
        previous_secret_sealed: None,
        previous_master_key_id: None,
        previous_secret_until: None,
        enabled: true,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let effects = audit::effects(
        caller.into(),
        "webhook.created",
        ("webhook", &row.id),
        &reach_of(&row),
        origin,
    );
    svc.store().create_webhook(&row, &effects).await?;
    Ok((row.into(), secret))
}

/// A webhook the caller can see.
async fn visible(svc: &Services, caller: &Principal, id: &str) -> ApiResult<WebhookRow> {
    let row = svc.store().webhook(id).await?.ok_or(ApiError::NotFound)?;
    if row.organization_id != caller.organization_id()
        || !caller
            .reach
            .sees_environment(&row.project_id, &row.environment_id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(row)
}

/// One webhook.
pub async fn show(svc: &Services, caller: &Principal, id: &str) -> ApiResult<Webhook> {
    Ok(visible(svc, caller, id).await?.into())
}

/// The webhooks the caller can see, optionally of one environment.
pub async fn list(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<&str>,
    page: PageRequest,
) -> ApiResult<Page<Webhook>> {
    let env = match environment_id {
        Some(id) => Some(visibility::environment(svc, &caller.reach, id).await?),
        None => None,
    };
    let filter = WebhookFilter {
        organization_id: caller.organization_id().to_string(),
        project_id: caller.reach.project_id.clone(),
        environment_id: env
            .map(|e| e.id)
            .or_else(|| caller.reach.environment_id.clone()),
    };
    Ok(svc
        .store()
        .list_webhooks(&filter, page)
        .await?
        .map(Webhook::from))
}

/// Changes a webhook's target, events, description or state.
#[tracing::instrument(skip_all, fields(caller = %caller.id, webhook = %id))]
pub async fn update(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: UpdateWebhook,
) -> ApiResult<Webhook> {
    let mut row = visible(svc, caller, id).await?;
    if body.url.is_some() {
        row.url = check_url(svc, body.url.as_deref()).await?;
    }
    if body.events.is_some() {
        row.events = check_events(body.events.as_deref())?;
    }
    if body.description.is_some() {
        row.description = check_description(body.description)?;
    }
    if let Some(enabled) = body.enabled {
        if enabled && !row.enabled {
            row.failing_since = None;
            row.disabled_reason = None;
        }
        row.enabled = enabled;
    }
    row.updated_at = now_ms();
    let effects = audit::effects(
        caller.into(),
        "webhook.updated",
        ("webhook", &row.id),
        &reach_of(&row),
        origin,
    );
    svc.store().update_webhook(&row, &effects).await?;
    Ok(row.into())
}

/// Deletes a webhook: nothing more is delivered to it.
#[tracing::instrument(skip_all, fields(caller = %caller.id, webhook = %id))]
pub async fn delete(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let row = visible(svc, caller, id).await?;
    let effects = audit::effects(
        caller.into(),
        "webhook.deleted",
        ("webhook", &row.id),
        &reach_of(&row),
        origin,
    );
    svc.store()
        .delete_webhook(&row.id, now_ms(), &effects)
        .await?;
    Ok(())
}

/// Gives a webhook a new secret (shown once); the old one keeps signing
/// beside it for [`PREVIOUS_SECRET_TTL_MS`].
#[tracing::instrument(skip_all, fields(caller = %caller.id, webhook = %id))]
pub async fn rotate_secret(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<(Webhook, SecretString)> {
    let mut row = visible(svc, caller, id).await?;
    let secret = new_secret();
    let (master_key_id, sealed) = seal(svc, &row.id, &secret)?;
    let now = now_ms();
    row.previous_secret_sealed = Some(std::mem::replace(&mut row.secret_sealed, sealed));
    row.previous_master_key_id = Some(std::mem::replace(&mut row.master_key_id, master_key_id));
    row.previous_secret_until = Some(now + PREVIOUS_SECRET_TTL_MS);
    row.updated_at = now;
    let effects = audit::effects(
        caller.into(),
        "webhook.secret_rotated",
        ("webhook", &row.id),
        &reach_of(&row),
        origin,
    );
    svc.store().update_webhook(&row, &effects).await?;
    Ok((row.into(), secret))
}

/// A webhook's delivery attempts, newest first.
pub async fn deliveries(
    svc: &Services,
    caller: &Principal,
    id: &str,
    page: PageRequest,
) -> ApiResult<Page<DeliveryRow>> {
    let row = visible(svc, caller, id).await?;
    Ok(svc.store().list_deliveries(&row.id, page).await?)
}

/// Makes a new attempt of a delivery's event now; the answer is the
/// attempt's event id.
#[tracing::instrument(skip_all, fields(caller = %caller.id, webhook = %id))]
pub async fn retry(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    delivery_id: &str,
) -> ApiResult<DeliveryRow> {
    let row = visible(svc, caller, id).await?;
    let delivery = svc
        .store()
        .delivery(&row.id, delivery_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !row.enabled {
        return Err(ApiError::field(
            "webhook",
            "is disabled; enable it (PATCH {\"enabled\": true}) to retry",
        ));
    }
    let effects = audit::effects(
        caller.into(),
        "webhook_delivery.retried",
        ("webhook_delivery", &delivery.id),
        &reach_of(&row),
        origin,
    );
    if !svc
        .store()
        .retry_message(&delivery.message_id, now_ms(), &effects)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    svc.webhook_worker().wake();
    Ok(delivery)
}
