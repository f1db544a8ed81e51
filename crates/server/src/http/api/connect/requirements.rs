//! `/v1/connect/requirements…`: the app's requirements and the end user's
//! status for each, submitting credentials, starting an OAuth2 or
//! action-connector link, and disconnecting (SPEC §6). Connect token only.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_core::{requirement::Requirement, time::format_ms};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::ConnectAuth,
        extract::ApiJson,
        openapi::ErrorEnvelope,
        response::{ok, Data},
    },
    service::{
        audit::Origin,
        connect::{self, SubmitCredentials},
        oauth2::flow::{self, Route},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(requirements))
        .routes(routes!(requirements_status))
        .routes(routes!(submit_credentials))
        .routes(routes!(oauth2_authorize))
        .routes(routes!(action_connector_authorize))
        .routes(routes!(disconnect))
}

/// A requirement with the end user's status for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectRequirementView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub requirement: Requirement,
    /// `completed` or `pending`.
    pub status: &'static str,
    /// When it was satisfied.
    pub connected_at: Option<String>,
    /// For connection requirements: the connection type (title, `auth`,
    /// JSON Schema of `config`, which fields are secret), to build a form.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<crate::catalog::PublicView>,
    /// The account an OAuth2 connection or linked account signed in as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountLabel>,
    /// The state of what the user holds for it, when they hold something:
    /// `active`, or `expired` (connect again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<String>,
}

/// `{label}` of a signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountLabel {
    pub label: Option<String>,
}

/// `{id, name, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementStatusView {
    pub id: String,
    pub name: String,
    pub status: &'static str,
}

/// The app's requirements and the end user's status for each.
#[utoipa::path(get, path = "/v1/connect/requirements", tag = "connect",
    responses((status = 200, body = Data<Vec<ConnectRequirementView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn requirements(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Data<Vec<ConnectRequirementView>>> {
    let states = connect::requirement_states(&svc, &c.app, &c.claims.user_id).await?;
    let views = states
        .into_iter()
        .map(|s| {
            let satisfied = s.satisfied();
            let connection_type = s
                .requirement
                .connection_type()
                .and_then(|t| svc.catalog().get(t))
                .map(|t| t.public_view());
            let account = s
                .held
                .as_ref()
                .filter(|c| satisfied && c.provider_ref.is_some())
                .map(|c| AccountLabel {
                    label: c.label.clone(),
                });
            ConnectRequirementView {
                status: s.status_word(),
                connected_at: s
                    .held
                    .as_ref()
                    .filter(|_| satisfied)
                    .map(|c| format_ms(c.updated_at)),
                connection_status: s.held.as_ref().map(|c| c.status.to_string()),
                account,
                connection_type,
                requirement: s.requirement,
            }
        })
        .collect();
    Ok(ok(views))
}

/// Just the status of each requirement.
#[utoipa::path(get, path = "/v1/connect/requirements/status", tag = "connect",
    responses((status = 200, body = Data<Vec<RequirementStatusView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn requirements_status(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Data<Vec<RequirementStatusView>>> {
    let states = connect::requirement_states(&svc, &c.app, &c.claims.user_id).await?;
    Ok(ok(states
        .iter()
        .map(|s| RequirementStatusView {
            id: s.requirement.id.clone(),
            name: s.requirement.name.clone(),
            status: s.status_word(),
        })
        .collect()))
}

/// Submit credentials for a connection requirement; replaces any previous
/// connection for it. Answers `{"message": "created"}`.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/credentials", tag = "connect", params(("id" = String, Path)),
    request_body = SubmitCredentials,
    responses((status = 201, description = "`{\"message\": \"created\"}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn submit_credentials(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SubmitCredentials>,
) -> ApiResult<Response> {
    connect::submit_credentials(&svc, &c, &origin, &id, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"message": "created"}))).into_response())
}

/// Start an OAuth2 connection: the provider's authorize URL, with a
/// single-use `state` (ten minutes) and a PKCE S256 challenge. Needs an
/// OAuth2 provider for the connection type in this environment.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/oauth2/authorize", tag = "connect", params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn oauth2_authorize(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Data<Value>> {
    let url = flow::authorize(&svc, &c, &id, Route::OAuth2).await?;
    Ok(ok(json!({ "url": url })))
}

/// Start linking an action-connector account: as OAuth2, with the
/// provider configured for the connector's app slug.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/action-connector/authorize", tag = "connect",
    params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn action_connector_authorize(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Data<Value>> {
    let url = flow::authorize(&svc, &c, &id, Route::ActionConnector).await?;
    Ok(ok(json!({ "url": url })))
}

/// The end user disconnects a requirement: 204, also when nothing was connected.
#[utoipa::path(delete, path = "/v1/connect/requirements/{id}/connection", tag = "connect", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn disconnect(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    connect::disconnect(&svc, &c, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
