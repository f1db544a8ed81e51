//! `/v1/apps`: apps on their own hostnames, their immutable versions
//! (requirements) and deployments (SPEC §5).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use gatehouse_core::{requirement::Requirement, time::format_ms};
use gatehouse_store::apps::App;
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
        apps::{self, CreateApp, CreateDeployment, CreateVersion, UpdateApp, Version},
        audit::Origin,
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(list_versions, create_version))
        .routes(routes!(deploy))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessControl {
    /// `private` (an access key with connect:write mints tokens) or `public`.
    pub access_type: String,
}

/// An app (SPEC §5).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// `app_…`
    pub id: String,
    pub name: String,
    pub slug: String,
    pub hostname: String,
    pub project_id: String,
    pub environment_id: String,
    pub access_control: AccessControl,
    pub deployed_version_id: Option<String>,
    /// Origins a connect token's `redirect_url` must be on (empty: any).
    pub allowed_redirect_origins: Vec<String>,
    pub created_at: String,
}

impl From<&App> for AppView {
    fn from(a: &App) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            slug: a.slug.clone(),
            hostname: a.hostname.clone(),
            project_id: a.project_id.clone(),
            environment_id: a.environment_id.clone(),
            access_control: AccessControl {
                access_type: a.access_type.to_string(),
            },
            deployed_version_id: a.deployed_version_id.clone(),
            allowed_redirect_origins: a
                .allowed_redirect_origins
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            created_at: format_ms(a.created_at),
        }
    }
}

/// An immutable snapshot of an app's requirements.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// `ver_…`
    pub id: String,
    pub app_id: String,
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<Requirement>,
    pub created_at: String,
}

impl From<Version> for VersionView {
    fn from(v: Version) -> Self {
        Self {
            id: v.row.id,
            app_id: v.row.app_id,
            requirements: v.requirements,
            created_at: format_ms(v.row.created_at),
        }
    }
}

/// Apps the caller can see, newest first; filter with `environment_id`.
#[utoipa::path(get, path = "/v1/apps", tag = "apps",
    params(("environment_id" = Option<String>, Query), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<AppView>> {
    let page = query.page()?;
    let environment_id = query.string("environment_id");
    let found = apps::list(&svc, &p, environment_id.as_deref(), page).await?;
    Ok(List::new(found.map(|a| AppView::from(&a)), page))
}

/// Create an app in an environment.
#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = CreateApp,
    responses((status = 201, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<CreateApp>,
) -> ApiResult<Response> {
    Ok(created(AppView::from(
        &apps::create(&svc, &p, &origin, body).await?,
    )))
}

/// One app.
#[utoipa::path(get, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 200, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<AppView>> {
    Ok(ok(AppView::from(&apps::show(&svc, &p, &id).await?)))
}

/// Change an app's name, hostname or access type.
#[utoipa::path(patch, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)), request_body = Option<UpdateApp>,
    responses((status = 200, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<UpdateApp>,
) -> ApiResult<Data<AppView>> {
    Ok(ok(AppView::from(
        &apps::update(&svc, &p, &origin, &id, body).await?,
    )))
}

/// Delete an app: its hostname stops answering, its connect tokens stop
/// working and its end users' connections are deleted.
#[utoipa::path(delete, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn remove(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    apps::delete(&svc, &p, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An app's versions, newest first.
#[utoipa::path(get, path = "/v1/apps/{id}/versions", tag = "apps",
    params(("id" = String, Path), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<VersionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn list_versions(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<List<VersionView>> {
    let page = query.page()?;
    let found = apps::list_versions(&svc, &p, &id, page).await?;
    Ok(List::new(found.map(VersionView::from), page))
}

/// Create a version: an immutable snapshot of the requirements.
#[utoipa::path(post, path = "/v1/apps/{id}/versions", tag = "apps", params(("id" = String, Path)),
    request_body = CreateVersion,
    responses((status = 201, body = Data<VersionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn create_version(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateVersion>,
) -> ApiResult<Response> {
    let version = apps::create_version(&svc, &p, &origin, &id, body).await?;
    Ok(created(VersionView::from(version)))
}

/// Deploy a version: it becomes the requirements end users fulfil.
#[utoipa::path(post, path = "/v1/apps/{id}/deployments", tag = "apps", params(("id" = String, Path)),
    request_body = CreateDeployment,
    responses((status = 201, body = Data<AppView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn deploy(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<Response> {
    Ok(created(AppView::from(
        &apps::deploy(&svc, &p, &origin, &id, body).await?,
    )))
}
