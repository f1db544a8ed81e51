//! `/v1/environments/{id}`.

use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        openapi::ErrorEnvelope,
        response::{ok, Data},
        views::EnvironmentView,
    },
    service::{tenancy, Services},
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

/// One environment the caller can see.
#[utoipa::path(get, path = "/v1/environments/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Data<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, environment = %id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Data<EnvironmentView>> {
    Ok(ok(EnvironmentView::from(
        &tenancy::environment(&svc, &p, &id).await?,
    )))
}
