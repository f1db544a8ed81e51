//! What a caller may see: a live project, environment or app inside its
//! reach. Anything else is 404, so existence is never revealed (SPEC §2).

use gatehouse_core::Reach;
use gatehouse_store::{
    apps::App,
    tenancy::{Environment, Project},
};

use super::{principal::Principal, Services};
use crate::error::{ApiError, ApiResult};

/// A live environment that `reach` can see.
pub async fn environment(svc: &Services, reach: &Reach, id: &str) -> ApiResult<Environment> {
    let env = svc
        .store()
        .environment(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if env.organization_id != reach.organization_id
        || !reach.sees_environment(&env.project_id, &env.id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(env)
}

/// A live project the caller can see.
pub async fn project(svc: &Services, caller: &Principal, id: &str) -> ApiResult<Project> {
    let project = svc.store().project(id).await?.ok_or(ApiError::NotFound)?;
    if project.organization_id != caller.organization_id()
        || !caller.reach.sees_project(&project.id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(project)
}

/// A live app the caller can see.
pub async fn app(svc: &Services, caller: &Principal, id: &str) -> ApiResult<App> {
    let app = svc.store().app(id).await?.ok_or(ApiError::NotFound)?;
    if app.organization_id != caller.organization_id()
        || !caller
            .reach
            .sees_environment(&app.project_id, &app.environment_id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(app)
}

/// The reach of an environment.
pub fn environment_reach(env: &Environment) -> Reach {
    Reach::environment(&env.organization_id, &env.project_id, &env.id)
}

/// The reach of a project.
pub fn project_reach(project: &Project) -> Reach {
    Reach::project(&project.organization_id, &project.id)
}
