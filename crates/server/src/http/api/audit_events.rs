//! `/v1/audit-events`: the audit trail, newest first, filterable by
//! `action`, `actor_id`, `target_id`, `project_id` and `environment_id`. A
//! project- or environment-scoped reader sees only events inside its reach.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth, extract::QueryMap, openapi::ErrorEnvelope, response::List,
        views::AuditEventView,
    },
    service::{
        audit::{self, EventQuery},
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Audit events the caller can see.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    params(("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query), ("action" = Option<String>, Query),
           ("actor_id" = Option<String>, Query), ("target_id" = Option<String>, Query),
           ("project_id" = Option<String>, Query), ("environment_id" = Option<String>, Query)),
    responses((status = 200, body = List<AuditEventView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<AuditEventView>> {
    let page = query.page()?;
    let filter = EventQuery {
        project_id: query.string("project_id"),
        environment_id: query.string("environment_id"),
        action: query.string("action"),
        actor_id: query.string("actor_id"),
        target_id: query.string("target_id"),
    };
    let found = audit::list(&svc, &p, filter, page).await?;
    Ok(List::new(found.map(AuditEventView::from), page))
}
