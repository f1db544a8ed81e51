//! The audit trail: who did what to which target, from where. Every use
//! case that changes something records an event through [`record`]; the
//! listing is [`list`].

use gatehouse_core::{new_id, time::now_ms, IdKind, Reach};
use gatehouse_store::{
    audit::{AuditEvent, AuditFilter},
    effects::Effects,
    Page, PageRequest,
};

use super::{principal::Principal, Services};
use crate::error::{ApiError, ApiResult};

/// Where a request came from: the client IP (the peer, or behind trusted
/// proxies the address they saw) and its user agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Who did something.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `access_key`, `personal_access_token`, `session`, `user`,
    /// `end_user`, `public`, `anonymous` or `system`.
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

/// The effects of a change whose one audit event is `action` on `target`,
/// now: written by the store in the change's transaction.
pub fn effects(
    actor: Actor<'_>,
    action: &str,
    target: (&str, &str),
    reach: &Reach,
    origin: &Origin,
) -> Effects {
    Effects::audit([event(actor, action, target, reach, origin, now_ms())])
}

/// Records an event that accompanies no other change (a reveal, a failed
/// sign-in), now.
pub async fn record(
    svc: &Services,
    actor: Actor<'_>,
    action: &str,
    target: (&str, &str),
    reach: &Reach,
    origin: &Origin,
) -> ApiResult<()> {
    svc.store()
        .record(&effects(actor, action, target, reach, origin))
        .await?;
    Ok(())
}

/// How often old audit events and webhook events are pruned.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes audit events, and delivered or abandoned webhook events with
/// their delivery log, older than `audit_retention_days`; hourly, from
/// start-up, until the task is aborted.
pub async fn run_pruner(svc: Services) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let before = now_ms() - i64::from(svc.config().audit_retention_days) * 86_400_000;
        match svc.store().prune_events(before).await {
            Ok(n) if n > 0 => tracing::info!(events = n, "pruned old audit events"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not prune old audit events"),
        }
        if let Err(err) = svc.store().prune_webhook_events(before).await {
            tracing::warn!(error = %err, "could not prune old webhook events");
        }
    }
}

/// Which events to list, as asked.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub project_id: Option<String>,
    pub environment_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    /// RFC 3339: only events at or after.
    pub since: Option<String>,
    /// RFC 3339: only events before.
    pub until: Option<String>,
    /// The `next_cursor` of a previous page.
    pub cursor: Option<String>,
}

/// A page of events and the cursor of the next one (none on the last).
#[derive(Debug)]
pub struct EventPage {
    pub page: Page<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// The opaque cursor after `event_id`.
fn cursor_after(event_id: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(event_id)
}

/// The event id a cursor points after; 400 for one Gatehouse did not make.
fn cursor_position(cursor: &str) -> ApiResult<String> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|id| id.starts_with("evt_") && id.len() <= 64)
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor from a previous page"))
}

fn time_param(field: &str, raw: Option<String>) -> ApiResult<Option<i64>> {
    match raw {
        None => Ok(None),
        Some(text) => gatehouse_core::time::parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| {
                ApiError::field(
                    field,
                    "must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z",
                )
            }),
    }
}

/// The events the caller can see, newest first, by page or by cursor
/// (which stays correct while events are written: it points at an event,
/// not an offset). A project- or environment-scoped reader sees only
/// events inside its reach; asking for another project or environment is
/// 404.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn list(
    svc: &Services,
    caller: &Principal,
    query: EventQuery,
    page: PageRequest,
) -> ApiResult<EventPage> {
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
        since: time_param("since", query.since)?,
        until: time_param("until", query.until)?,
    };
    let before = query.cursor.as_deref().map(cursor_position).transpose()?;
    let (page, more) = svc
        .store()
        .list_events(&filter, page, before.as_deref())
        .await?;
    let next_cursor = more
        .then(|| page.items.last().map(|e| cursor_after(&e.id)))
        .flatten();
    Ok(EventPage { page, next_cursor })
}
