//! `/v1/personal-access-tokens`: a dashboard user's own tokens, acting
//! with that user's role (an access key is refused here: 403).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use gatehouse_core::{time::now_ms, TokenKind};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::credential_filter;
use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::{ApiJson, OptionalJson, QueryMap},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        views::CredentialView,
    },
    service::{
        audit::Origin,
        credentials::{self, CreateCredential, RotateCredential},
        Services,
    },
    state::AppState,
};

const KIND: TokenKind = TokenKind::PersonalAccessToken;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, revoke))
        .routes(routes!(rotate))
}

/// Create a personal access token; the response is the only place its token appears.
#[utoipa::path(post, path = "/v1/personal-access-tokens", tag = "personal access tokens", request_body = CreateCredential,
    responses((status = 201, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult<Response> {
    let issued = credentials::create(&svc, &p, &origin, KIND, body).await?;
    Ok(created(CredentialView::issued(&issued, now_ms())))
}

/// List the personal access tokens the caller can see, newest first.
#[utoipa::path(get, path = "/v1/personal-access-tokens", tag = "personal access tokens",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200), ("project_id" = Option<String>, Query),
           ("environment_id" = Option<String>, Query), ("active" = Option<bool>, Query)),
    responses((status = 200, body = List<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<CredentialView>> {
    let page = query.page()?;
    let found = credentials::list(&svc, &p, KIND, credential_filter(&query)?, page).await?;
    Ok(List::new(found.map(|r| CredentialView::of(&svc, &r)), page))
}

/// One of your personal access tokens.
#[utoipa::path(get, path = "/v1/personal-access-tokens/{id}", tag = "personal access tokens", params(("id" = String, Path)),
    responses((status = 200, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, pat = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<CredentialView>> {
    let record = credentials::find_visible(&svc, &p, KIND, &id).await?;
    Ok(ok(CredentialView::of(&svc, &record)))
}

/// Revoke a personal access token: it fails from the next request on.
#[utoipa::path(delete, path = "/v1/personal-access-tokens/{id}", tag = "personal access tokens", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, pat = %id))]
pub async fn revoke(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    credentials::revoke(&svc, &p, &origin, KIND, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a personal access token: a new token with the same name, scopes and reach;
/// the old one keeps working for `grace_period_seconds`.
#[utoipa::path(post, path = "/v1/personal-access-tokens/{id}/rotate", tag = "personal access tokens", params(("id" = String, Path)),
    request_body = Option<RotateCredential>,
    responses((status = 201, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, pat = %id))]
pub async fn rotate(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateCredential>,
) -> ApiResult<Response> {
    let issued = credentials::rotate(&svc, &p, &origin, KIND, &id, body).await?;
    Ok(created(CredentialView::issued(&issued, now_ms())))
}
