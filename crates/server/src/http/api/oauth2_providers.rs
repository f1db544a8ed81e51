//! `/v1/oauth2-providers` (SPEC §5.1, resource `apps`): the OAuth2
//! providers of an environment, from the API (changeable, the client
//! secret write-only) and from `gatehouse.toml` (read-only).

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use gatehouse_core::{oauth2::ProviderTarget, time::format_ms};
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
        oauth2::{
            client::redirect_uri,
            providers::{self, CreateProvider, Provider, UpdateProvider},
        },
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

/// An OAuth2 provider. The client secret is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// `oap_…`
    pub id: String,
    pub name: String,
    /// `api` or `file` (read-only, from gatehouse.toml).
    pub source: &'static str,
    /// The environment of an API provider.
    pub environment_id: Option<String>,
    /// The environments a file provider serves (empty: every one).
    pub environments: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_slug: Option<String>,
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub client_id: String,
    /// Always true: the secret is stored sealed and never returned.
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `client_secret_basic` or `client_secret_post`.
    pub client_auth: &'static str,
    /// The redirect URI to register with the provider.
    pub redirect_uri: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl ProviderView {
    fn new(svc: &Services, p: Provider) -> Self {
        let (connection_type, app_slug) = match &p.target {
            ProviderTarget::ConnectionType(t) => (Some(t.clone()), None),
            ProviderTarget::AppSlug(s) => (None, Some(s.clone())),
        };
        let s = p.settings;
        Self {
            id: p.id,
            name: p.name,
            source: p.source.as_str(),
            environment_id: p.environment_id,
            environments: p.environments,
            connection_type,
            app_slug,
            preset: s.preset,
            authorize_url: s.authorize_url,
            token_url: s.token_url,
            userinfo_url: s.userinfo_url,
            issuer: s.issuer,
            discovery_url: s.discovery_url,
            client_id: s.client_id,
            client_secret_set: true,
            scopes: s.scopes,
            extra_authorize_params: s.extra_authorize_params,
            client_auth: s.client_auth.as_str(),
            redirect_uri: redirect_uri(svc),
            created_at: p.created_at.map(format_ms),
            updated_at: p.updated_at.map(format_ms),
        }
    }
}

/// Providers the caller can see: the API's and the file's; filter with
/// `environment_id`.
#[utoipa::path(get, path = "/v1/oauth2-providers", tag = "oauth2 providers",
    params(("environment_id" = Option<String>, Query), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<ProviderView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<ProviderView>> {
    let page = query.page()?;
    let env = query.string("environment_id");
    let found = providers::list(&svc, &p, env.as_deref(), page).await?;
    Ok(List::new(found.map(|p| ProviderView::new(&svc, p)), page))
}

/// Create a provider for a connection type or an action connector in an
/// environment, optionally from a preset.
#[utoipa::path(post, path = "/v1/oauth2-providers", tag = "oauth2 providers", request_body = CreateProvider,
    responses((status = 201, body = Data<ProviderView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<CreateProvider>,
) -> ApiResult<Response> {
    let provider = providers::create(&svc, &p, &origin, body).await?;
    Ok(created(ProviderView::new(&svc, provider)))
}

/// One provider.
#[utoipa::path(get, path = "/v1/oauth2-providers/{id}", tag = "oauth2 providers", params(("id" = String, Path)),
    responses((status = 200, body = Data<ProviderView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, provider = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<ProviderView>> {
    let provider = providers::show(&svc, &p, &id).await?;
    Ok(ok(ProviderView::new(&svc, provider)))
}

/// Change a provider (not its environment or target).
#[utoipa::path(patch, path = "/v1/oauth2-providers/{id}", tag = "oauth2 providers", params(("id" = String, Path)),
    request_body = Option<UpdateProvider>,
    responses((status = 200, body = Data<ProviderView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, provider = %id))]
pub async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<UpdateProvider>,
) -> ApiResult<Data<ProviderView>> {
    let provider = providers::update(&svc, &p, &origin, &id, body).await?;
    Ok(ok(ProviderView::new(&svc, provider)))
}

/// Delete a provider. Its connections keep their tokens until those
/// expire; they are no longer refreshed.
#[utoipa::path(delete, path = "/v1/oauth2-providers/{id}", tag = "oauth2 providers", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, provider = %id))]
pub async fn remove(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    providers::delete(&svc, &p, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
