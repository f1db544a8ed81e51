//! What an end user does with a connect token (SPEC §6), on the hosted
//! page or through the platform's own UI: see the app's requirements and
//! their state, submit credentials, start an OAuth2 or action-connector
//! link, disconnect, and revoke the token itself.

use gatehouse_core::{
    new_id,
    requirement::{Requirement, RequirementState},
    time::now_ms,
    validate::BLANK,
    ConnectionKind, ConnectionStatus, IdKind,
};
use gatehouse_store::{
    apps::App,
    connect::{ConnectionRow, Replace},
    effects::OutboxEvent,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    apps::deployed_requirements,
    audit::{self, Actor, Origin},
    principal::ConnectPrincipal,
    webhooks::events,
    Services,
};
use crate::{
    catalog::AuthKind,
    error::{ApiError, ApiResult},
};

/// Body of `POST /v1/connect/requirements/{id}/credentials`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitCredentials {
    /// The requirement's connection type, e.g. `dynamiq.connections.OpenAI`.
    #[serde(rename = "type")]
    #[schema(value_type = String, required = true)]
    pub kind: Option<String>,
    /// Validated against the type's JSON Schema.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
}

impl std::fmt::Debug for SubmitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitCredentials")
            .field("type", &self.kind)
            .field("config", &self.config.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// The state of each requirement of the app's deployed version.
pub type States = Vec<RequirementState<ConnectionRow>>;

/// The deployed version's requirements, each with the user's connection or
/// account for it (if any). No deployed version: no requirements.
pub async fn requirement_states(svc: &Services, app: &App, user_id: &str) -> ApiResult<States> {
    let requirements = deployed_requirements(svc, app).await?;
    if requirements.is_empty() {
        return Ok(Vec::new());
    }
    let held = svc
        .store()
        .connections_for_app(&app.environment_id, &app.id, user_id)
        .await?;
    Ok(RequirementState::pair(requirements, held))
}

/// The requirement `id` of the deployed version (404 otherwise).
async fn find_requirement(
    svc: &Services,
    c: &ConnectPrincipal,
    id: &str,
) -> ApiResult<Requirement> {
    deployed_requirements(svc, &c.app)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)
}

/// Whether the token's user has an active connection or account for the
/// requirement `name`.
pub async fn has_active(svc: &Services, c: &ConnectPrincipal, name: &str) -> ApiResult<bool> {
    Ok(svc
        .store()
        .connections_for_app(&c.app.environment_id, &c.app.id, &c.claims.user_id)
        .await?
        .iter()
        .any(|h| h.requirement_name == name && h.status == ConnectionStatus::Active))
}

fn end_user(c: &ConnectPrincipal) -> (String, &'static str) {
    (c.actor_id(), "end_user")
}

/// Stores credentials for a connection requirement (validated against its
/// type's schema, sealed under the master key), replacing any previous
/// connection for it.
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn submit_credentials(
    svc: &Services,
    c: &ConnectPrincipal,
    origin: &Origin,
    id: &str,
    body: SubmitCredentials,
) -> ApiResult<()> {
    let requirement = find_requirement(svc, c, id).await?;
    let Some(wanted) = requirement.connection_type() else {
        return Err(ApiError::field(
            "type",
            "this requirement is fulfilled by linking an account: use action-connector/authorize",
        ));
    };
    let given = body.kind.as_deref().unwrap_or("");
    if given.is_empty() {
        return Err(ApiError::field("type", BLANK));
    }
    if given != wanted {
        return Err(ApiError::field(
            "type",
            format!("must be {wanted}, the requirement's connection type"),
        ));
    }
    let ctype = svc.catalog().get(wanted).ok_or_else(|| {
        ApiError::field(
            "type",
            format!("{wanted} is no longer a known connection type"),
        )
    })?;
    if ctype.auth() == AuthKind::OAuth2 {
        return Err(ApiError::field(
            "type",
            format!("{wanted} connects through OAuth2: use /v1/connect/requirements/{id}/oauth2/authorize"),
        ));
    }
    let config = body
        .config
        .ok_or_else(|| ApiError::field("config", BLANK))?;
    ctype.validate(&config).map_err(ApiError::BadRequest)?;

    let now = now_ms();
    let conn_id = new_id(IdKind::Connection);
    let plaintext = serde_json::to_vec(&config).map_err(ApiError::internal)?;
    let (master_key_id, sealed) = svc.keyring().seal(&plaintext, conn_id.as_bytes())?;
    let row = ConnectionRow {
        id: conn_id.clone(),
        kind: ConnectionKind::Connection,
        environment_id: c.app.environment_id.clone(),
        app_id: c.app.id.clone(),
        user_id: c.claims.user_id.clone(),
        requirement_name: requirement.name.clone(),
        r#type: wanted.to_string(),
        status: ConnectionStatus::Active,
        label: None,
        sealed_config: Some(sealed),
        master_key_id: Some(master_key_id),
        created_at: now,
        updated_at: now,
        provider_ref: None,
        access_expires_at: None,
        has_refresh_token: false,
        next_refresh_at: None,
        refresh_failures: 0,
        last_error: None,
    };
    let (actor_id, kind) = end_user(c);
    let mut effects = audit::effects(
        Actor {
            kind,
            id: &actor_id,
        },
        "connection.created",
        ("connection", &conn_id),
        &c.reach(),
        origin,
    )
    .announce(events::of_connection("connection.created", &row));
    effects.outbox.extend(completion(svc, &c.app, &row).await?);
    let replace = if c.may_replace() {
        Replace::Any
    } else {
        Replace::NotActive
    };
    match svc
        .store()
        .replace_connection(&row, replace, &effects)
        .await
    {
        Err(gatehouse_store::StoreError::Conflict { .. }) if replace == Replace::NotActive => {
            Err(ConnectPrincipal::add_only_refusal())
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// `requirements.completed`, when storing `row` turns its user's status
/// for the app complete (it was not before).
pub async fn completion(
    svc: &Services,
    app: &App,
    row: &ConnectionRow,
) -> ApiResult<Option<OutboxEvent>> {
    let requirements = deployed_requirements(svc, app).await?;
    if requirements.is_empty() {
        return Ok(None);
    }
    let held = svc
        .store()
        .connections_for_app(&app.environment_id, &app.id, &row.user_id)
        .await?;
    let complete = |held: Vec<ConnectionRow>| {
        RequirementState::pair(requirements.clone(), held)
            .iter()
            .all(RequirementState::satisfied)
    };
    let before = complete(held.clone());
    let mut after: Vec<ConnectionRow> = held
        .into_iter()
        .filter(|h| h.requirement_name != row.requirement_name)
        .collect();
    after.push(row.clone());
    Ok((!before && complete(after))
        .then(|| events::requirements_completed(&app.environment_id, &app.id, &row.user_id)))
}

/// The end user disconnects a requirement (nothing connected is fine too).
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn disconnect(
    svc: &Services,
    c: &ConnectPrincipal,
    origin: &Origin,
    id: &str,
) -> ApiResult<()> {
    let requirement = find_requirement(svc, c, id).await?;
    if !c.may_replace() && has_active(svc, c, &requirement.name).await? {
        return Err(ConnectPrincipal::add_only_refusal());
    }
    let (actor_id, kind) = end_user(c);
    let reach = c.reach();
    svc.store()
        .delete_connection_for_requirement(
            &c.app.environment_id,
            &c.app.id,
            &c.claims.user_id,
            &requirement.name,
            |row| {
                let target = row.kind.as_str();
                audit::effects(
                    Actor {
                        kind,
                        id: &actor_id,
                    },
                    &format!("{target}.deleted"),
                    (target, &row.id),
                    &reach,
                    origin,
                )
                .announce(events::of_connection("connection.deleted", row))
            },
        )
        .await?;
    Ok(())
}

/// The connect token revokes itself: it fails from the next request on.
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn end_session(svc: &Services, c: &ConnectPrincipal, origin: &Origin) -> ApiResult<()> {
    let (actor_id, kind) = end_user(c);
    let effects = audit::effects(
        Actor {
            kind,
            id: &actor_id,
        },
        "connect_token.revoked",
        ("connect_token", &c.claims.jti),
        &c.reach(),
        origin,
    );
    svc.store()
        .revoke_connect_token(&c.claims.jti, c.claims.exp + 60, &effects)
        .await?;
    svc.forget_connect_token(&c.token_hash).await;
    Ok(())
}
