//! `/v1/projects` and `/v1/projects/{id}/environments`. Every project is
//! created with `sandbox` and `live`; deleting one is soft (SPEC §4).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::{ApiJson, OptionalJson, QueryMap},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        views::{EnvironmentView, ProjectView},
    },
    service::{
        audit::Origin,
        tenancy::{self, EnvironmentInput, ProjectInput, ProjectUpdate},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(list_environments, create_environment))
}

/// Projects the caller can see, newest first, each with its environments.
#[utoipa::path(get, path = "/v1/projects", tag = "projects",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<ProjectView>> {
    let page = query.page()?;
    let found = tenancy::list_projects(&svc, &p, page).await?;
    Ok(List::new(found.map(|p| ProjectView::from(&p)), page))
}

/// Create a project with `sandbox` and `live` environments. Needs an
/// organization-wide credential.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = ProjectInput,
    responses((status = 201, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn create(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    ApiJson(body): ApiJson<ProjectInput>,
) -> ApiResult<Response> {
    let project = tenancy::create_project(&svc, &p, &origin, body).await?;
    Ok(created(ProjectView::from(&project)))
}

/// One project with its environments.
#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, project = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<ProjectView>> {
    Ok(ok(ProjectView::from(
        &tenancy::project(&svc, &p, &id).await?,
    )))
}

/// Rename a project.
#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    request_body = Option<ProjectUpdate>,
    responses((status = 200, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, project = %id))]
pub async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ProjectUpdate>,
) -> ApiResult<Data<ProjectView>> {
    let project = tenancy::update_project(&svc, &p, &origin, &id, body).await?;
    Ok(ok(ProjectView::from(&project)))
}

/// Delete a project (soft): its environments go with it and every
/// credential scoped to it is revoked.
#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, project = %id))]
pub async fn remove(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    tenancy::delete_project(&svc, &p, &origin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's environments the caller can see, oldest first.
#[utoipa::path(get, path = "/v1/projects/{id}/environments", tag = "projects",
    params(("id" = String, Path), ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, project = %id))]
pub async fn list_environments(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<List<EnvironmentView>> {
    let page = query.page()?;
    let found = tenancy::list_environments(&svc, &p, &id, page).await?;
    Ok(List::new(found.map(|e| EnvironmentView::from(&e)), page))
}

/// Add an environment to a project.
#[utoipa::path(post, path = "/v1/projects/{id}/environments", tag = "projects", params(("id" = String, Path)),
    request_body = EnvironmentInput,
    responses((status = 201, body = Data<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, project = %id))]
pub async fn create_environment(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EnvironmentInput>,
) -> ApiResult<Response> {
    let env = tenancy::create_environment(&svc, &p, &origin, &id, body).await?;
    Ok(created(EnvironmentView::from(&env)))
}
