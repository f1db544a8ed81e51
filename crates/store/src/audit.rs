//! The audit trail: one row per change, never updated.

use crate::{
    error::Result,
    on_pool,
    page::{Page, PageRequest},
    Store,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: String,
    pub organization_id: String,
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: i64,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub organization_id: String,
    /// When set, only events in this project (a project-scoped reader).
    pub project_id: Option<String>,
    /// When set, only events in this environment.
    pub environment_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    /// Only events at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Only events before this time (Unix ms).
    pub until: Option<i64>,
}

macro_rules! insert_event {
    ($e:expr) => {
        sqlx::query(
            "INSERT INTO audit_events (id, organization_id, project_id, environment_id, actor_kind, actor_id, action, target_type, target_id, ip, user_agent, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&$e.id)
        .bind(&$e.organization_id)
        .bind(&$e.project_id)
        .bind(&$e.environment_id)
        .bind(&$e.actor_kind)
        .bind(&$e.actor_id)
        .bind(&$e.action)
        .bind(&$e.target_type)
        .bind(&$e.target_id)
        .bind(&$e.ip)
        .bind(&$e.user_agent)
        .bind($e.at)
    };
}
pub(crate) use insert_event;

impl Store {
    /// Events matching `filter`, newest first: the page `page`, or with
    /// `before` (an event id, the cursor), the next `page.size` events older
    /// than it. The answer says whether there are more.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_events(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
        before: Option<&str>,
    ) -> Result<(Page<AuditEvent>, bool)> {
        let cond = "organization_id = $1 AND ($2 IS NULL OR project_id = $2) AND ($3 IS NULL OR environment_id = $3) \
                    AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR actor_id = $5) AND ($6 IS NULL OR target_id = $6) \
                    AND ($7 IS NULL OR at >= $7) AND ($8 IS NULL OR at < $8)";
        let list = format!(
            "SELECT * FROM audit_events WHERE {cond} AND ($9 IS NULL OR id < $9) ORDER BY id DESC LIMIT $10 OFFSET $11"
        );
        let count = format!("SELECT COUNT(*) FROM audit_events WHERE {cond}");
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(&filter.organization_id)
                    .bind(&filter.project_id)
                    .bind(&filter.environment_id)
                    .bind(&filter.action)
                    .bind(&filter.actor_id)
                    .bind(&filter.target_id)
                    .bind(filter.since)
                    .bind(filter.until)
            };
        }
        let offset = if before.is_some() { 0 } else { page.offset() };
        Ok(on_pool!(self, |p| {
            let mut items: Vec<AuditEvent> = bind_filter!(sqlx::query_as(&list))
                .bind(before)
                .bind(page.limit() + 1)
                .bind(offset)
                .fetch_all(p)
                .await?;
            let more = items.len() as i64 > page.limit();
            items.truncate(page.limit() as usize);
            let total = bind_filter!(sqlx::query_scalar(&count))
                .fetch_one(p)
                .await?;
            (Page { items, total }, more)
        }))
    }

    /// Deletes events older than `before` (retention); returns how many.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn prune_events(&self, before: i64) -> Result<u64> {
        Ok(on_pool!(self, |p| sqlx::query(
            "DELETE FROM audit_events WHERE at < $1"
        )
        .bind(before)
        .execute(p)
        .await?
        .rows_affected()))
    }
}
