//! The audit trail: who did what to which target, from where. Every use
//! case that changes something records an event through [`record`]; the
//! listing is [`list`].

use gatehouse_core::{new_id, time::now_ms, IdKind, Reach};
use gatehouse_store::{
    audit::{AuditEvent, AuditFilter},
    Page, PageRequest,
};

use super::{principal::Principal, Services};
use crate::error::{ApiError, ApiResult};

/// Where a request came from: the client IP (the peer, or the first
/// `X-Forwarded-For` hop when `trust_forwarded_headers` is on) and its user
/// agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who did something.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `access_key`, `personal_access_token`, `session`, `user`,
    /// `end_user`, `public` or `system`.
    pub kind: &'a str,
    pub id: &'a str,
}

impl<'a> From<&'a Principal> for Actor<'a> {
    fn from(p: &'a Principal) -> Self {
        Actor {
            kind: p.kind.as_str(),
            id: &p.id,
        }
    }
}

/// The first start, acting for nobody.
pub const SYSTEM: Actor<'static> = Actor {
    kind: "system",
    id: "bootstrap",
};

/// An audit event of `action` on `target` (type, id) within `reach`, at `at`.
pub fn event(
    actor: Actor<'_>,
    action: &str,
    target: (&str, &str),
    reach: &Reach,
    origin: &Origin,
    at: i64,
) -> AuditEvent {
    AuditEvent {
        id: new_id(IdKind::Event),
        organization_id: reach.organization_id.clone(),
        project_id: reach.project_id.clone(),
        environment_id: reach.environment_id.clone(),
        actor_kind: actor.kind.to_string(),
        actor_id: actor.id.to_string(),
        action: action.to_string(),
        target_type: target.0.to_string(),
        target_id: target.1.to_string(),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        at,
    }
}

/// Records an event now.
pub async fn record(
    svc: &Services,
    actor: Actor<'_>,
    action: &str,
    target: (&str, &str),
    reach: &Reach,
    origin: &Origin,
) -> ApiResult<()> {
    let event = event(actor, action, target, reach, origin, now_ms());
    svc.store().record_event(&event).await?;
    Ok(())
}

/// Which events to list, as asked.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
}

/// The events the caller can see, newest first. A project- or
/// environment-scoped reader sees only events inside its reach; asking for
/// another project or environment is 404.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn list(
    svc: &Services,
    caller: &Principal,
    query: EventQuery,
    page: PageRequest,
) -> ApiResult<Page<AuditEvent>> {
    let narrow = |asked: Option<String>, own: &Option<String>| match (asked, own) {
        (Some(asked), Some(own)) if &asked != own => Err(ApiError::NotFound),
        (asked, own) => Ok(asked.or_else(|| own.clone())),
    };
    let filter = AuditFilter {
        organization_id: caller.organization_id().to_string(),
        project_id: narrow(query.project_id, &caller.reach.project_id)?,
        environment_id: narrow(query.environment_id, &caller.reach.environment_id)?,
        action: query.action,
        actor_id: query.actor_id,
        target_id: query.target_id,
    };
    Ok(svc.store().list_events(&filter, page).await?)
}
