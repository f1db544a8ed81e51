//! The events webhooks receive (SPEC §9): their bodies, built where the
//! change happens and written to the outbox in its transaction. `data`
//! names ids, never a secret.

use gatehouse_core::{new_id, time::format_ms, time::now_ms, IdKind, Reach};
use gatehouse_store::{connect::ConnectionRow, effects::OutboxEvent};
use serde_json::{json, Value};

use crate::{error::ApiResult, service::Services};

/// An event of `kind` for the webhooks of `environment_id`.
pub fn event(kind: &str, environment_id: &str, data: Value) -> OutboxEvent {
    let id = new_id(IdKind::Event);
    let created_at = now_ms();
    let body = json!({
        "id": id,
        "type": kind,
        "created_at": format_ms(created_at),
        "environment_id": environment_id,
        "data": data,
    });
    OutboxEvent {
        id,
        environment_id: environment_id.to_string(),
        kind: kind.to_string(),
        body: body.to_string(),
        created_at,
    }
}

/// `connection.*` of a connection, or `account.linked` of an account's
/// link: `{app_id, user_id, requirement_name, connection_id}` (or
/// `account_id, app_slug`).
pub fn of_connection(kind: &str, row: &ConnectionRow) -> OutboxEvent {
    let data = if kind == "account.linked" {
        json!({
            "app_id": row.app_id,
            "user_id": row.user_id,
            "requirement_name": row.requirement_name,
            "account_id": row.id,
            "app_slug": row.r#type,
        })
    } else {
        json!({
            "app_id": row.app_id,
            "user_id": row.user_id,
            "requirement_name": row.requirement_name,
            "connection_id": row.id,
        })
    };
    event(kind, &row.environment_id, data)
}

/// `requirements.completed` for a user of an app.
pub fn requirements_completed(environment_id: &str, app_id: &str, user_id: &str) -> OutboxEvent {
    event(
        "requirements.completed",
        environment_id,
        json!({"app_id": app_id, "user_id": user_id}),
    )
}

/// `access_key.revoked` for every environment the key reached, each body
/// naming its environment.
pub async fn access_key_revoked(
    svc: &Services,
    reach: &Reach,
    access_key_id: &str,
    reason: &str,
) -> ApiResult<Vec<OutboxEvent>> {
    let environments = svc.store().environments_in(reach).await?;
    Ok(environments
        .iter()
        .map(|env| {
            event(
                "access_key.revoked",
                env,
                json!({"access_key_id": access_key_id, "reason": reason}),
            )
        })
        .collect())
}
