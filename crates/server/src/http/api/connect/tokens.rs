//! On an app's own hostname (SPEC §6): the platform's backend mints
//! connect tokens for its end users and asks whether a user is ready.
//! Private apps need an access key with `connect:write` reaching the app's
//! environment; public apps need nothing.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_core::{requirement::Requirement, time::format_ms};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::AppAccess, extract::ApiJson, extract::QueryMap, openapi::ErrorEnvelope,
        views::Sensitive,
    },
    service::{
        audit::Origin,
        connect_tokens::{self, MintToken},
        limits::Meter,
        schema::UserIdText,
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint))
        .routes(routes!(status))
}

/// `{token, url, expires_at}`, bare.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintedToken {
    #[schema(value_type = String)]
    pub token: Sensitive<String>,
    #[schema(value_type = String)]
    pub url: Sensitive<String>,
    pub expires_at: String,
}

/// `{status, unsatisfied}`, bare.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementsStatus {
    /// `complete` or `incomplete`.
    pub status: &'static str,
    #[schema(value_type = Vec<Object>)]
    pub unsatisfied: Vec<Requirement>,
}

/// Mint a connect token for an end user of this app, and the URL of the
/// hosted connect page with the token in it. Limited per (app, user_id)
/// by `connect_token_user`, besides the key's and the environment's limits.
#[utoipa::path(post, path = "/v1/connect/tokens", tag = "app surface", request_body = MintToken,
    responses((status = 201, body = MintedToken), (status = 429, body = ErrorEnvelope, description = "a rate limit is used up (`Retry-After`)"), (status = "4XX", body = ErrorEnvelope)),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(app = %access.app.id))]
pub async fn mint(
    State(svc): State<Services>,
    AppAccess(access): AppAccess,
    origin: Origin,
    meter: Meter,
    ApiJson(body): ApiJson<MintToken>,
) -> ApiResult<Response> {
    let minted = connect_tokens::mint(&svc, &access, &origin, &meter, body).await?;
    let body = MintedToken {
        token: (&minted.token).into(),
        url: (&minted.url).into(),
        expires_at: format_ms(minted.expires_at * 1000),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Is this end user ready? `complete` when every requirement of the
/// deployed version is satisfied, else `incomplete` with the rest.
#[utoipa::path(get, path = "/v1/requirements/status", tag = "app surface", params(("user_id" = UserIdText, Query)),
    responses((status = 200, body = RequirementsStatus), (status = "4XX", body = ErrorEnvelope)),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(app = %access.app.id))]
pub async fn status(
    State(svc): State<Services>,
    AppAccess(access): AppAccess,
    query: QueryMap,
) -> ApiResult<Json<RequirementsStatus>> {
    let user_id = query.get("user_id").unwrap_or("");
    let unsatisfied = connect_tokens::unsatisfied(&svc, &access.app, user_id).await?;
    Ok(Json(RequirementsStatus {
        status: if unsatisfied.is_empty() {
            "complete"
        } else {
            "incomplete"
        },
        unsatisfied,
    }))
}
