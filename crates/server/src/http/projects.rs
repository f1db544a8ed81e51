//! `/v1/projects` and `/v1/projects/{id}/environments`. Every project is
//! created with `sandbox` and `live`. Deleting a project is soft: the
//! project and its environments disappear from the API, every credential
//! scoped to them is revoked at once, and the audit trail keeps its events.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::get,
    Router,
};
use gatehouse_core::{
    new_id,
    time::now_ms,
    validate::{Name, Slug, BLANK},
    IdKind, Reach,
};
use gatehouse_store::{
    tenancy::{Environment, Project},
    PageRequest,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    auth::{Auth, Principal},
    bootstrap::default_environments,
    error::{ApiError, ApiResult, FieldErrors},
    http::{
        extract::{ApiJson, OptionalJson, QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
        response::{created, ok, Data, List},
        views::{EnvironmentView, ProjectView},
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list).post(create))
        .route("/v1/projects/{id}", get(show).patch(update).delete(remove))
        .route(
            "/v1/projects/{id}/environments",
            get(list_environments).post(create_environment),
        )
}

/// Body of `POST /v1/projects` and `PATCH /v1/projects/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    /// 1–100 characters.
    pub name: Option<String>,
}

/// Body of `POST /v1/projects/{id}/environments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    /// `[a-z0-9-]{1,63}`, unique in the project.
    pub name: Option<String>,
}

pub fn project_reach(project: &Project) -> Reach {
    Reach {
        organization_id: project.organization_id.clone(),
        project_id: Some(project.id.clone()),
        environment_id: None,
    }
}

/// A live project the caller can see (404 otherwise).
pub async fn visible_project(state: &AppState, p: &Principal, id: &str) -> ApiResult<Project> {
    let project = state.store().project(id).await?.ok_or(ApiError::NotFound)?;
    if project.organization_id != p.organization_id() || !p.reach.sees_project(&project.id) {
        return Err(ApiError::NotFound);
    }
    Ok(project)
}

/// 403 unless the caller reaches the whole of `reach`.
fn require_covers(p: &Principal, reach: &Reach) -> ApiResult<()> {
    if p.reach.covers(reach) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "credential",
            format!(
                "a {}-scoped credential cannot change a {}",
                p.reach.level(),
                reach.level()
            ),
        ))
    }
}

/// The project's environments the caller can see.
async fn environments_of(
    state: &AppState,
    p: &Principal,
    project: &Project,
) -> ApiResult<Vec<Environment>> {
    let all = state
        .store()
        .list_environments(
            &project.id,
            p.reach.environment_id.as_deref(),
            PageRequest {
                page: 1,
                size: 1000,
            },
        )
        .await?;
    Ok(all.items)
}

/// Projects the caller can see, newest first, each with its environments.
#[utoipa::path(get, path = "/v1/projects", tag = "projects",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<ProjectView>> {
    let page = query.page()?;
    let found = state
        .store()
        .list_projects(p.organization_id(), p.reach.project_id.as_deref(), page)
        .await?;
    let mut views = Vec::with_capacity(found.items.len());
    for project in &found.items {
        views.push(ProjectView::new(
            project,
            &environments_of(&state, &p, project).await?,
        ));
    }
    Ok(List::new(
        gatehouse_store::Page {
            items: views,
            total: found.total,
        },
        page,
    ))
}

/// Create a project with `sandbox` and `live` environments. Needs an
/// organization-wide credential.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = ProjectInput,
    responses((status = 201, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    ApiJson(body): ApiJson<ProjectInput>,
) -> ApiResult<Response> {
    require_covers(&p, &Reach::organization(p.organization_id()))?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Name::parse(body.name.as_deref().unwrap_or("")));
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", BLANK))?;
    let project = Project {
        id: new_id(IdKind::Project),
        organization_id: p.organization_id().to_string(),
        name: name.into_inner(),
        created_at: now_ms(),
        deleted_at: None,
    };
    let environments = default_environments(&project);
    state
        .store()
        .create_project(&project, &environments)
        .await?;
    state
        .audit(
            &p,
            "project.created",
            ("project", &project.id),
            &project_reach(&project),
            &meta,
        )
        .await?;
    Ok(created(ProjectView::new(&project, &environments)))
}

/// One project with its environments.
#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), project = %id))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<ProjectView>> {
    let project = visible_project(&state, &p, &id).await?;
    Ok(ok(ProjectView::new(
        &project,
        &environments_of(&state, &p, &project).await?,
    )))
}

/// Rename a project.
#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    request_body = ProjectInput,
    responses((status = 200, body = Data<ProjectView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), project = %id))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ProjectInput>,
) -> ApiResult<Data<ProjectView>> {
    let mut project = visible_project(&state, &p, &id).await?;
    require_covers(&p, &project_reach(&project))?;
    if let Some(raw) = body.name.as_deref() {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", Name::parse(raw));
        errors.finish()?;
        if let Some(name) = name {
            state
                .store()
                .rename_project(&project.id, name.as_str())
                .await?;
            project.name = name.into_inner();
            state
                .audit(
                    &p,
                    "project.updated",
                    ("project", &project.id),
                    &project_reach(&project),
                    &meta,
                )
                .await?;
        }
    }
    Ok(ok(ProjectView::new(
        &project,
        &environments_of(&state, &p, &project).await?,
    )))
}

/// Delete a project (soft): its environments go with it and every
/// credential scoped to it is revoked.
#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), project = %id))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let project = visible_project(&state, &p, &id).await?;
    require_covers(&p, &Reach::organization(p.organization_id()))?;
    let revoked = state.store().delete_project(&project.id, now_ms()).await?;
    if !revoked.is_empty() {
        state.forget_all_credentials().await;
    }
    state
        .audit(
            &p,
            "project.deleted",
            ("project", &project.id),
            &project_reach(&project),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's environments the caller can see, oldest first.
#[utoipa::path(get, path = "/v1/projects/{id}/environments", tag = "projects",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), project = %id))]
pub async fn list_environments(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    query: QueryMap,
) -> ApiResult<List<EnvironmentView>> {
    let page = query.page()?;
    let project = visible_project(&state, &p, &id).await?;
    let found = state
        .store()
        .list_environments(&project.id, p.reach.environment_id.as_deref(), page)
        .await?;
    Ok(List::new(found.map(|e| EnvironmentView::from(&e)), page))
}

/// Add an environment to a project.
#[utoipa::path(post, path = "/v1/projects/{id}/environments", tag = "projects", params(("id" = String, Path)),
    request_body = EnvironmentInput,
    responses((status = 201, body = Data<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), project = %id))]
pub async fn create_environment(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EnvironmentInput>,
) -> ApiResult<Response> {
    let project = visible_project(&state, &p, &id).await?;
    require_covers(&p, &project_reach(&project))?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Slug::parse(body.name.as_deref().unwrap_or("")));
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", BLANK))?;
    let env = Environment {
        id: new_id(IdKind::Environment),
        organization_id: project.organization_id.clone(),
        project_id: project.id.clone(),
        name: name.into_inner(),
        created_at: now_ms(),
        deleted_at: None,
    };
    state
        .store()
        .create_environment(&env)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => {
                ApiError::conflict("name", "an environment of this name exists in the project")
            }
            other => other,
        })?;
    let reach = Reach {
        environment_id: Some(env.id.clone()),
        ..project_reach(&project)
    };
    state
        .audit(
            &p,
            "environment.created",
            ("environment", &env.id),
            &reach,
            &meta,
        )
        .await?;
    Ok(created(EnvironmentView::from(&env)))
}
