//! `/v1/environments/{id}`.

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};

use gatehouse_core::Reach;
use gatehouse_store::tenancy::Environment;

use crate::{
    auth::Auth,
    error::{ApiError, ApiResult},
    http::{
        openapi::ErrorEnvelope,
        response::{ok, Data},
        views::EnvironmentView,
    },
    state::AppState,
};

/// A live environment that `reach` can see; 404 otherwise (existence is
/// never revealed).
pub async fn visible_environment(
    state: &AppState,
    reach: &Reach,
    id: &str,
) -> ApiResult<Environment> {
    let env = state
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

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/environments/{id}", get(show))
}

/// One environment the caller can see.
#[utoipa::path(get, path = "/v1/environments/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Data<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), environment = %id))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<EnvironmentView>> {
    let env = visible_environment(&state, &p.reach, &id).await?;
    Ok(ok(EnvironmentView::from(&env)))
}
