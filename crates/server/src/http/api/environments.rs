//! `/v1/environments/{id}`: read one, or set its own rate limit.

use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::OptionalJson,
        openapi::ErrorEnvelope,
        response::{ok, Data},
        views::EnvironmentView,
    },
    service::{
        audit::Origin,
        tenancy::{self, EnvironmentUpdate},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
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

/// Set the environment's own `environment` rate limit, or with `null` go
/// back to the deployment's default. Needs `projects:write` and a
/// credential reaching the environment's whole project.
#[utoipa::path(patch, path = "/v1/environments/{id}", tag = "projects", params(("id" = String, Path)),
    request_body = Option<EnvironmentUpdate>,
    responses((status = 200, body = Data<EnvironmentView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, environment = %id))]
pub async fn update(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<EnvironmentUpdate>,
) -> ApiResult<Data<EnvironmentView>> {
    let env = tenancy::update_environment(&svc, &p, &origin, &id, body).await?;
    Ok(ok(EnvironmentView::from(&env)))
}
