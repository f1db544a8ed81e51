//! `/v1/webhooks` (SPEC §9, resource `webhooks`): an environment's
//! webhooks, their secrets (shown once, on create and rotate), their
//! delivery log, and manual retries.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_core::time::format_ms;
use gatehouse_store::webhooks::DeliveryRow;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::{ApiJson, OptionalJson, QueryMap},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
    },
    service::{
        audit::Origin,
        webhooks::{self, CreateWebhook, UpdateWebhook, Webhook},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
}

/// A webhook. The secret is shown only when it is made.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `whk_…`
    pub id: String,
    pub environment_id: String,
    pub project_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why Gatehouse disabled it, when it did (every delivery failed for
    /// 3 days).
    pub disabled_reason: Option<String>,
    /// Until when the previous secret also signs, after a rotation.
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        let r = w.row;
        Self {
            id: r.id,
            environment_id: r.environment_id,
            project_id: r.project_id,
            url: r.url,
            events: w.events,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            previous_secret_expires_at: r
                .previous_secret_until
                .filter(|until| *until > gatehouse_core::time::now_ms())
                .map(format_ms),
            created_at: format_ms(r.created_at),
            updated_at: format_ms(r.updated_at),
        }
    }
}

/// A webhook with its signing secret: the one answer that holds it.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify signatures with it (Standard Webhooks).
    pub secret: String,
}

fn with_secret(webhook: Webhook, secret: SecretString) -> WebhookWithSecret {
    WebhookWithSecret {
        webhook: webhook.into(),
        secret: secret.expose_secret().to_string(),
    }
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `whd_…`
    pub id: String,
    /// The event's id, also its `webhook-id` header.
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt of the event.
    pub attempt: i32,
    /// None when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    /// None, or a short reason.
    pub error: Option<String>,
    pub at: String,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            attempt: d.attempt,
            status_code: d.status_code,
            latency_ms: d.latency_ms,
            error: d.error,
            at: format_ms(d.at),
        }
    }
}

/// The answer to a retry: which event is being sent again.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryView {
    pub webhook_id: String,
    pub event_id: String,
    /// Always `queued`: the attempt starts now and shows in the deliveries.
    pub status: &'static str,
}

/// Webhooks the caller can see; filter with `environment_id`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    params(("environment_id" = Option<String>, Query), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<WebhookView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<WebhookView>> {
    let page = query.page()?;
    let env = query.string("environment_id");
    let found = webhooks::list(&svc, &p, env.as_deref(), page).await?;
    Ok(List::new(found.map(WebhookView::from), page))
}

/// Create a webhook for an environment's events. The answer holds the
/// signing secret, shown only this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = Data<WebhookWithSecret>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    let (webhook, secret) = webhooks::create(&svc, &p, &origin, body).await?;
    Ok(created(with_secret(webhook, secret)))
}

/// One webhook.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Data<WebhookView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<WebhookView>> {
    Ok(ok(webhooks::show(&svc, &p, &id).await?.into()))
}

/// Change a webhook's `url`, `events`, `description` or `enabled`.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = Option<UpdateWebhook>,
    responses((status = 200, body = Data<WebhookView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id))]
pub async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<UpdateWebhook>,
) -> ApiResult<Data<WebhookView>> {
    Ok(ok(webhooks::update(&svc, &p, &origin, &id, body)
        .await?
        .into()))
}

/// Delete a webhook: nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id))]
pub async fn remove(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&svc, &p, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a webhook a new signing secret (shown only in this answer). The
/// previous secret keeps signing beside it for 24 hours.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Data<WebhookWithSecret>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id))]
pub async fn rotate_secret(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<Data<WebhookWithSecret>> {
    let (webhook, secret) = webhooks::rotate_secret(&svc, &p, &origin, &id).await?;
    Ok(ok(with_secret(webhook, secret)))
}

/// A webhook's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<DeliveryView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id))]
pub async fn deliveries(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<List<DeliveryView>> {
    let page = query.page()?;
    let found = webhooks::deliveries(&svc, &p, &id, page).await?;
    Ok(List::new(found.map(DeliveryView::from), page))
}

/// Send a delivery's event again now, as a new attempt.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = Data<RetryView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, webhook = %id, delivery = %delivery_id))]
pub async fn retry(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let delivery = webhooks::retry(&svc, &p, &origin, &id, &delivery_id).await?;
    let view = RetryView {
        webhook_id: delivery.webhook_id,
        event_id: delivery.event_id,
        status: "queued",
    };
    Ok((StatusCode::ACCEPTED, Json(Data { data: view })).into_response())
}
