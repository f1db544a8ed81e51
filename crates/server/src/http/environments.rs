//! `/v1/environments/{id}`.

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};

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
    let env = state
        .store()
        .environment(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if env.organization_id != p.organization_id()
        || !p.reach.sees_environment(&env.project_id, &env.id)
    {
        return Err(ApiError::NotFound);
    }
    Ok(ok(EnvironmentView::from(&env)))
}
