//! `/v1/audit-events` (SPEC §9): the audit trail, newest first, filterable
//! by `actor_id`, `action`, `target_id`, `since`, `until` (and `project_id`,
//! `environment_id`), by page or by `cursor`; every answer carries
//! `next_cursor` (null on the last page). A project- or environment-scoped
//! reader sees only events inside its reach.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::QueryMap,
        openapi::ErrorEnvelope,
        response::{List, Pagination},
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

/// `{"data": [...], "pagination": {...}, "next_cursor": "…" | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventList {
    pub data: Vec<AuditEventView>,
    pub pagination: Pagination,
    /// Pass as `?cursor=` for the next (older) page; null on the last.
    pub next_cursor: Option<String>,
}

/// Audit events the caller can see.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200), ("cursor" = Option<String>, Query),
           ("action" = Option<String>, Query), ("actor_id" = Option<String>, Query), ("target_id" = Option<String>, Query),
           ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime),
           ("project_id" = Option<String>, Query), ("environment_id" = Option<String>, Query)),
    responses((status = 200, body = AuditEventList), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<axum::Json<AuditEventList>> {
    let page = query.page()?;
    let filter = EventQuery {
        project_id: query.string("project_id"),
        environment_id: query.string("environment_id"),
        action: query.string("action"),
        actor_id: query.string("actor_id"),
        target_id: query.string("target_id"),
        // Timestamps: present but empty is not a timestamp (400).
        since: query.get("since").map(str::to_string),
        until: query.get("until").map(str::to_string),
        cursor: query.string("cursor"),
    };
    let found = audit::list(&svc, &p, filter, page).await?;
    let list = List::new(found.page.map(AuditEventView::from), page);
    Ok(axum::Json(AuditEventList {
        data: list.data,
        pagination: list.pagination,
        next_cursor: found.next_cursor,
    }))
}
