//! `POST /v1/credentials/revoke` (SPEC §11): leaked-token revocation, with
//! no credential, limited by client IP.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult},
    http::{extract::ApiJson, openapi::ErrorEnvelope, response::Data},
    service::{
        audit::Origin,
        leaks::{self, LeakReport},
        limits::{self, Meter},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(revoke))
}

/// The answer to a report: how many strings it held (never which of them
/// were tokens).
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    pub received: usize,
}

/// Report leaked tokens: every active access key or personal access token
/// among them is revoked at once, on every node. Needs no credential; the
/// answer is the same whatever the tokens were.
#[utoipa::path(post, path = "/v1/credentials/revoke", tag = "credentials", request_body = LeakReport,
    responses((status = 202, body = Data<Received>), (status = "4XX", body = ErrorEnvelope)))]
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(svc): State<Services>,
    meter: Meter,
    origin: Origin,
    body: Result<ApiJson<LeakReport>, ApiError>,
) -> ApiResult<Response> {
    // Counted whatever the body is.
    limits::anonymous(&svc, &meter, origin.ip.as_deref()).await?;
    let ApiJson(report) = body?;
    let received = leaks::revoke(&svc, &origin, report).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Data {
            data: Received { received },
        }),
    )
        .into_response())
}
