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
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn record_event(&self, event: &AuditEvent) -> Result<()> {
        on_pool!(self, |p| {
            insert_event!(event).execute(p).await?;
        });
        Ok(())
    }

    /// Events matching `filter`, newest first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_events(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let cond = "organization_id = $1 AND ($2 IS NULL OR project_id = $2) AND ($3 IS NULL OR environment_id = $3) \
                    AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR actor_id = $5) AND ($6 IS NULL OR target_id = $6)";
        let list =
            format!("SELECT * FROM audit_events WHERE {cond} ORDER BY id DESC LIMIT $7 OFFSET $8");
        let count = format!("SELECT COUNT(*) FROM audit_events WHERE {cond}");
        macro_rules! bind_filter {
            ($q:expr) => {
                $q.bind(&filter.organization_id)
                    .bind(&filter.project_id)
                    .bind(&filter.environment_id)
                    .bind(&filter.action)
                    .bind(&filter.actor_id)
                    .bind(&filter.target_id)
            };
        }
        Ok(on_pool!(self, |p| {
            let items = bind_filter!(sqlx::query_as(&list))
                .bind(page.limit())
                .bind(page.offset())
                .fetch_all(p)
                .await?;
            let total = bind_filter!(sqlx::query_scalar(&count))
                .fetch_one(p)
                .await?;
            Page { items, total }
        }))
    }
}
