//! Organizations' projects and environments (SPEC §4). Every project is
//! created with `sandbox` and `live`. Deleting a project is soft: the
//! project and its environments disappear from the API, every credential
//! scoped to them is revoked at once, and the audit trail keeps its events.

use gatehouse_core::{
    new_id,
    tenancy::DEFAULT_ENVIRONMENTS,
    time::now_ms,
    validate::{Name, Slug, BLANK},
    IdKind, Reach,
};
use gatehouse_store::{
    tenancy::{Environment, Organization, Project},
    Page, PageRequest,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    audit::{self, Origin},
    principal::Principal,
    visibility::{self, project_reach},
    Services,
};
use crate::error::{ApiError, ApiResult, FieldErrors};

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

/// A project with the environments the caller can see.
#[derive(Debug, Clone)]
pub struct ProjectWithEnvironments {
    pub project: Project,
    pub environments: Vec<Environment>,
}

/// The environments a new project starts with ([`DEFAULT_ENVIRONMENTS`]).
pub fn default_environments(project: &Project) -> Vec<Environment> {
    DEFAULT_ENVIRONMENTS
        .into_iter()
        .map(|name| Environment {
            id: new_id(IdKind::Environment),
            organization_id: project.organization_id.clone(),
            project_id: project.id.clone(),
            name: name.into(),
            created_at: project.created_at,
            deleted_at: None,
            rate_limit: None,
            rate_limit_window: None,
        })
        .collect()
}

/// 403 unless the caller reaches the whole of `reach`.
fn require_covers(caller: &Principal, reach: &Reach) -> ApiResult<()> {
    if caller.reach.covers(reach) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "credential",
            format!(
                "a {}-scoped credential cannot change a {}",
                caller.reach.level(),
                reach.level()
            ),
        ))
    }
}

/// The project's environments the caller can see.
async fn with_environments(
    svc: &Services,
    caller: &Principal,
    project: Project,
) -> ApiResult<ProjectWithEnvironments> {
    let environments = svc
        .store()
        .list_environments(
            &project.id,
            caller.reach.environment_id.as_deref(),
            PageRequest {
                page: 1,
                size: 1000,
            },
        )
        .await?
        .items;
    Ok(ProjectWithEnvironments {
        project,
        environments,
    })
}

/// The caller's organization.
pub async fn organization(svc: &Services, caller: &Principal) -> ApiResult<Organization> {
    svc.store()
        .organization(caller.organization_id())
        .await?
        .ok_or(ApiError::NotFound)
}

/// Projects the caller can see, newest first, each with its environments.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn list_projects(
    svc: &Services,
    caller: &Principal,
    page: PageRequest,
) -> ApiResult<Page<ProjectWithEnvironments>> {
    let found = svc
        .store()
        .list_projects(
            caller.organization_id(),
            caller.reach.project_id.as_deref(),
            page,
        )
        .await?;
    let mut items = Vec::with_capacity(found.items.len());
    for project in found.items {
        items.push(with_environments(svc, caller, project).await?);
    }
    Ok(Page {
        items,
        total: found.total,
    })
}

/// Creates a project with its default environments. Needs an
/// organization-wide credential.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn create_project(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    body: ProjectInput,
) -> ApiResult<ProjectWithEnvironments> {
    require_covers(caller, &Reach::organization(caller.organization_id()))?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Name::parse(body.name.as_deref().unwrap_or("")));
    errors.finish()?;
    let name = name.ok_or_else(|| ApiError::field("name", BLANK))?;
    let project = Project {
        id: new_id(IdKind::Project),
        organization_id: caller.organization_id().to_string(),
        name: name.into_inner(),
        created_at: now_ms(),
        deleted_at: None,
    };
    let environments = default_environments(&project);
    let effects = audit::effects(
        caller.into(),
        "project.created",
        ("project", &project.id),
        &project_reach(&project),
        origin,
    );
    svc.store()
        .create_project(&project, &environments, &effects)
        .await?;
    Ok(ProjectWithEnvironments {
        project,
        environments,
    })
}

/// One project with its environments.
pub async fn project(
    svc: &Services,
    caller: &Principal,
    id: &str,
) -> ApiResult<ProjectWithEnvironments> {
    let project = visibility::project(svc, caller, id).await?;
    with_environments(svc, caller, project).await
}

/// Renames a project (an empty body changes nothing).
#[tracing::instrument(skip_all, fields(caller = %caller.id, project = %id))]
pub async fn update_project(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: ProjectInput,
) -> ApiResult<ProjectWithEnvironments> {
    let mut project = visibility::project(svc, caller, id).await?;
    require_covers(caller, &project_reach(&project))?;
    if let Some(raw) = body.name.as_deref() {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", Name::parse(raw));
        errors.finish()?;
        if let Some(name) = name {
            let effects = audit::effects(
                caller.into(),
                "project.updated",
                ("project", &project.id),
                &project_reach(&project),
                origin,
            );
            svc.store()
                .rename_project(&project.id, name.as_str(), &effects)
                .await?;
            project.name = name.into_inner();
        }
    }
    with_environments(svc, caller, project).await
}

/// Deletes a project (soft): its environments go with it and every
/// credential scoped to it is revoked.
#[tracing::instrument(skip_all, fields(caller = %caller.id, project = %id))]
pub async fn delete_project(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let project = visibility::project(svc, caller, id).await?;
    require_covers(caller, &Reach::organization(caller.organization_id()))?;
    let effects = audit::effects(
        caller.into(),
        "project.deleted",
        ("project", &project.id),
        &project_reach(&project),
        origin,
    );
    let revoked = svc
        .store()
        .delete_project(&project.id, now_ms(), &effects)
        .await?;
    if !revoked.is_empty() {
        svc.forget_all_credentials().await;
    }
    // The project's apps stop answering at once, on every node.
    svc.forget_apps().await;
    Ok(())
}

/// The project's environments the caller can see, oldest first.
pub async fn list_environments(
    svc: &Services,
    caller: &Principal,
    project_id: &str,
    page: PageRequest,
) -> ApiResult<Page<Environment>> {
    let project = visibility::project(svc, caller, project_id).await?;
    Ok(svc
        .store()
        .list_environments(&project.id, caller.reach.environment_id.as_deref(), page)
        .await?)
}

/// Adds an environment to a project.
#[tracing::instrument(skip_all, fields(caller = %caller.id, project = %project_id))]
pub async fn create_environment(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    project_id: &str,
    body: EnvironmentInput,
) -> ApiResult<Environment> {
    let project = visibility::project(svc, caller, project_id).await?;
    require_covers(caller, &project_reach(&project))?;
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
        rate_limit: None,
        rate_limit_window: None,
    };
    let effects = audit::effects(
        caller.into(),
        "environment.created",
        ("environment", &env.id),
        &visibility::environment_reach(&env),
        origin,
    );
    svc.store()
        .create_environment(&env, &effects)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => {
                ApiError::conflict("name", "an environment of this name exists in the project")
            }
            other => other,
        })?;
    Ok(env)
}

/// One environment the caller can see.
pub async fn environment(svc: &Services, caller: &Principal, id: &str) -> ApiResult<Environment> {
    visibility::environment(svc, &caller.reach, id).await
}
