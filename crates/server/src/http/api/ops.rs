//! Operational routes, answered on every host: `/healthz`, `/readyz`,
//! `/.well-known/jwks.json`; and on the management surface only
//! `/openapi.json` and `/metrics` (behind `metrics_token` when set).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{service::Services, state::AppState};

/// The OpenAPI document, rendered once when the router is built.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);

/// The routes every surface answers.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(jwks))
}

/// `/openapi.json` and `/metrics` (management surface only).
pub fn management_ops_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .routes(routes!(metrics))
}

/// The public keys that verify connect tokens (RFC 7517), including retired
/// keys until every token they signed has expired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "ops", responses((status = 200, description = "JSON Web Key Set")))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn jwks(State(svc): State<Services>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(svc.signing().jwks()),
    )
        .into_response()
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn readyz(State(svc): State<Services>) -> Response {
    let backend = svc.store().backend_name();
    if svc.store().ping().await {
        Json(json!({"status": "ok", "database": backend})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": backend})),
        )
            .into_response()
    }
}

/// Prometheus text exposition. With `metrics_token` set, only for
/// `Authorization: Bearer <metrics_token>`.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus metrics"), (status = 401, body = crate::http::openapi::ErrorEnvelope)))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.config().metrics_token {
        use secrecy::ExposeSecret;
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::crypto::tokens::same(sent, expected.expose_secret()) {
            let reason = if sent.is_empty() {
                "missing"
            } else {
                "unknown"
            };
            return crate::error::ApiError::Unauthorized(reason).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
        .into_response()
}

/// This document: OpenAPI 3.1, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1")))]
#[tracing::instrument(level = "debug", skip_all)]
pub async fn openapi(Extension(doc): Extension<OpenApiJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
        .into_response()
}
