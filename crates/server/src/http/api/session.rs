//! `GET /v1/session`: who is signed in to the dashboard, and the CSRF
//! token its writes must carry.

use axum::{extract::State, response::IntoResponse, response::Response, Json};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult},
    http::{auth::SignedIn, openapi::ErrorEnvelope},
    service::{
        audit::Origin,
        limits::{self, Meter},
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(current))
}

/// Who is signed in, and the CSRF token for writes (dashboard sessions only).
#[utoipa::path(get, path = "/v1/session", tag = "dashboard",
    responses((status = 200, description = "`{\"data\": {\"user\", \"organization_id\", \"csrf_token\"}}`"), (status = "4XX", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub async fn current(
    State(state): State<AppState>,
    origin: Origin,
    meter: Meter,
    signed_in: Option<SignedIn>,
) -> ApiResult<Response> {
    let Some(s) = signed_in else {
        limits::anonymous(&state, &meter, origin.ip.as_deref()).await?;
        return Err(ApiError::Unauthorized("session"));
    };
    limits::caller(&state, &meter, &s.principal).await?;
    Ok(Json(json!({"data": {
        "user": {"id": s.user.id, "email": s.user.email, "role": s.user.role.as_str()},
        "organization_id": s.user.organization_id,
        "csrf_token": s.csrf,
    }}))
    .into_response())
}
