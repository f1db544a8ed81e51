//! `/v1/audit-events`: the audit trail, newest first, filterable by
//! `action`, `actor_id`, `target_id`, `project_id` and `environment_id`. A
//! project- or environment-scoped reader sees only events inside its reach.

use axum::{extract::State, routing::get, Router};
use gatehouse_store::audit::AuditFilter;

use crate::{
    auth::Auth,
    error::{ApiError, ApiResult},
    http::{extract::QueryMap, openapi::ErrorEnvelope, response::List, views::AuditEventView},
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit-events", get(list))
}

/// Audit events the caller can see.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query), ("action" = Option<String>, Query),
           ("actor_id" = Option<String>, Query), ("target_id" = Option<String>, Query),
           ("project_id" = Option<String>, Query), ("environment_id" = Option<String>, Query)),
    responses((status = 200, body = List<AuditEventView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<AuditEventView>> {
    let page = query.page()?;
    let narrow = |param: &str, own: &Option<String>| -> ApiResult<Option<String>> {
        match (query.string(param), own) {
            (Some(asked), Some(own)) if &asked != own => Err(ApiError::NotFound),
            (asked, own) => Ok(asked.or_else(|| own.clone())),
        }
    };
    let filter = AuditFilter {
        organization_id: p.organization_id().to_string(),
        project_id: narrow("project_id", &p.reach.project_id)?,
        environment_id: narrow("environment_id", &p.reach.environment_id)?,
        action: query.string("action"),
        actor_id: query.string("actor_id"),
        target_id: query.string("target_id"),
    };
    let found = state.store().list_events(&filter, page).await?;
    Ok(List::new(found.map(AuditEventView::from), page))
}
