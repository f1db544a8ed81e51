//! `/v1/personal-access-tokens`: a dashboard user's own tokens, acting
//! with that user's role (an access key is refused here: 403).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
    Router,
};
use gatehouse_core::TokenKind;

use crate::{
    auth::Auth,
    error::ApiResult,
    http::{
        credentials::{self, CreateCredential, RotateCredential},
        extract::{ApiJson, OptionalJson, QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
        response::{ok, Data, List},
        views::CredentialView,
    },
    state::AppState,
};

const KIND: TokenKind = TokenKind::PersonalAccessToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/personal-access-tokens", post(create).get(list))
        .route("/v1/personal-access-tokens/{id}", get(show).delete(revoke))
        .route("/v1/personal-access-tokens/{id}/rotate", post(rotate))
}

/// Create a personal access token; the response is the only place its token appears.
#[utoipa::path(post, path = "/v1/personal-access-tokens", tag = "personal access tokens", request_body = CreateCredential,
    responses((status = 201, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult<Response> {
    credentials::create(&state, &p, &meta, KIND, body).await
}

/// List the personal access tokens the caller can see, newest first.
#[utoipa::path(get, path = "/v1/personal-access-tokens", tag = "personal access tokens",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query), ("project_id" = Option<String>, Query),
           ("environment_id" = Option<String>, Query), ("active" = Option<bool>, Query)),
    responses((status = 200, body = List<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<CredentialView>> {
    credentials::list(&state, &p, KIND, &query).await
}

/// One of your personal access tokens.
#[utoipa::path(get, path = "/v1/personal-access-tokens/{id}", tag = "personal access tokens", params(("id" = String, Path)),
    responses((status = 200, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), pat = %id))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<CredentialView>> {
    let record = credentials::find_visible(&state, &p, KIND, &id).await?;
    Ok(ok(credentials::view(&state, &record)))
}

/// Revoke a personal access token: it fails from the next request on.
#[utoipa::path(delete, path = "/v1/personal-access-tokens/{id}", tag = "personal access tokens", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), pat = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    credentials::revoke(&state, &p, &meta, KIND, &id).await
}

/// Rotate a personal access token: a new key with the same name, scopes and reach;
/// the old one keeps working for `grace_period_seconds`.
#[utoipa::path(post, path = "/v1/personal-access-tokens/{id}/rotate", tag = "personal access tokens", params(("id" = String, Path)),
    request_body = RotateCredential,
    responses((status = 201, body = Data<CredentialView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), pat = %id))]
pub async fn rotate(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateCredential>,
) -> ApiResult<Response> {
    credentials::rotate(&state, &p, &meta, KIND, &id, body).await
}
