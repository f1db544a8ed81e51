//! Organizations' projects and environments (SPEC §4). Every project is
//! created with `sandbox` and `live`. Deleting a project is soft: the
//! project and its environments disappear from the API, every credential
//! scoped to them is revoked at once, and the audit trail keeps its events.
//! An environment may set its own `environment` rate limit (SPEC §8).

use gatehouse_core::{
    new_id,
    tenancy::DEFAULT_ENVIRONMENTS,
    time::now_ms,
    validate::{whole_number, Name, Slug, BLANK},
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
    schema::{NameText, SlugText},
    visibility::{self, project_reach},
    Services,
};
use crate::error::{ApiError, ApiResult, FieldErrors};

/// Body of `POST /v1/projects`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    /// 1–100 characters.
    #[schema(value_type = NameText, required = true)]
    pub name: Option<String>,
}

/// Body of `PATCH /v1/projects/{id}`: an empty body changes nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    /// 1–100 characters.
    #[schema(value_type = Option<NameText>)]
    pub name: Option<String>,
}

/// Body of `POST /v1/projects/{id}/environments`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    /// `[a-z0-9-]{1,63}`, unique in the project.
    #[schema(value_type = SlugText, required = true)]
    pub name: Option<String>,
}

/// Body of `PATCH /v1/environments/{id}`: every field optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentUpdate {
    /// The environment's own `environment` rate limit; `null` goes back to
    /// the deployment's default (`[rate_limits] environment`). Omitted:
    /// unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitInput>)]
    pub rate_limit: Option<Option<RateLimitInput>>,
}

/// Requests per window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitInput {
    /// 1–1000000.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 1_000_000)]
    pub limit: Option<i64>,
    /// 1–86400.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 86_400)]
    pub window_seconds: Option<i64>,
}

/// A field that is present, `null` included, as `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
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
    body: ProjectUpdate,
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

/// Sets or clears an environment's own rate limit. Needs a credential that
/// reaches the environment's whole project: one confined to the
/// environment cannot lift its own limit. Takes effect at once here and
/// promptly on every other node.
#[tracing::instrument(skip_all, fields(caller = %caller.id, environment = %id))]
pub async fn update_environment(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    id: &str,
    body: EnvironmentUpdate,
) -> ApiResult<Environment> {
    let mut env = visibility::environment(svc, &caller.reach, id).await?;
    let project = Reach::project(&env.organization_id, &env.project_id);
    if !caller.reach.covers(&project) {
        return Err(ApiError::forbidden(
            "credential",
            "an environment-scoped credential cannot change its environment; use a project- or organization-wide one",
        ));
    }
    let Some(change) = body.rate_limit else {
        return Ok(env);
    };
    let limit = match change {
        None => None,
        Some(input) => Some(rate_limit(&input)?),
    };
    let effects = audit::effects(
        caller.into(),
        "environment.updated",
        ("environment", &env.id),
        &visibility::environment_reach(&env),
        origin,
    );
    svc.store()
        .set_environment_rate_limit(&env.id, limit, &effects)
        .await?;
    svc.forget_rate_limits().await;
    env.rate_limit = limit.map(|l| l.0);
    env.rate_limit_window = limit.map(|l| l.1);
    Ok(env)
}

/// (limit, window_seconds) of a valid rate limit, else a 400 naming each
/// bad field (`rate_limit.limit`, `rate_limit.window_seconds`).
fn rate_limit(input: &RateLimitInput) -> ApiResult<(i64, i64)> {
    let mut errors = FieldErrors::new();
    let mut field = |name: &str, value: Option<i64>, max: i64| match value {
        None => {
            errors.add(&format!("rate_limit.{name}"), BLANK);
            None
        }
        Some(v) if (1..=max).contains(&v) => Some(v),
        Some(_) => {
            errors.add(
                &format!("rate_limit.{name}"),
                format!("must be a whole number from 1 to {max}"),
            );
            None
        }
    };
    let limit = field("limit", input.limit, 1_000_000);
    let window = field("window_seconds", input.window_seconds, 86_400);
    errors.finish()?;
    match (limit, window) {
        (Some(l), Some(w)) => Ok((l, w)),
        _ => Err(ApiError::field("rate_limit", BLANK)),
    }
}
