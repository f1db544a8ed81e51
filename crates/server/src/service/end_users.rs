//! The platform's side of its end users (SPEC §6): who they are in an
//! environment and what they connected (no secrets), erasure,
//! disconnection and connect-token revocation; and reveal, the one use
//! case that returns decrypted credentials (`connections:reveal`).

use gatehouse_core::{time::now_ms, validate::UserId, ConnectionKind, ConnectionStatus};
use gatehouse_store::{
    connect::{ConnectionRow, EndUserSummary},
    tenancy::Environment,
    Page, PageRequest,
};
use serde_json::Value;

use super::{
    audit::{self, Origin},
    oauth2,
    principal::{app_reach, Principal},
    visibility::{self, environment_reach},
    webhooks::events,
    Services,
};
use crate::error::{ApiError, ApiResult};

/// An end user and everything they hold in an environment.
#[derive(Debug)]
pub struct EndUser {
    pub user_id: String,
    pub environment_id: String,
    pub held: Vec<ConnectionRow>,
}

/// A decrypted credential for the app's runtime. `Debug` leaves out the
/// config.
pub struct Revealed {
    pub requirement_name: String,
    pub kind: String,
    pub config: Value,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed")
            .field("requirement_name", &self.requirement_name)
            .field("type", &self.kind)
            .field("config", &"[REDACTED]")
            .finish()
    }
}

/// The environment named by `environment_id` (optional for an
/// environment-scoped credential), if the caller sees it.
pub async fn environment_of(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<String>,
) -> ApiResult<Environment> {
    let id = environment_id
        .or_else(|| caller.reach.environment_id.clone())
        .ok_or_else(|| {
            ApiError::field(
                "environment_id",
                "cannot be blank (or use an environment-scoped key)",
            )
        })?;
    visibility::environment(svc, &caller.reach, &id).await
}

fn checked_user(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(|m| ApiError::field("user_id", m))
}

/// End users of an environment, optionally of one app.
pub async fn list(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<String>,
    app_id: Option<String>,
    page: PageRequest,
) -> ApiResult<(Environment, Page<EndUserSummary>)> {
    let env = environment_of(svc, caller, environment_id).await?;
    let app_id = match app_id {
        Some(id) => {
            let app = visibility::app(svc, caller, &id).await?;
            if app.environment_id != env.id {
                return Err(ApiError::NotFound);
            }
            Some(app.id)
        }
        None => None,
    };
    let found = svc
        .store()
        .list_end_users(&env.id, app_id.as_deref(), page)
        .await?;
    Ok((env, found))
}

/// One end user's connections and accounts (404 for an unknown user).
pub async fn show(
    svc: &Services,
    caller: &Principal,
    environment_id: Option<String>,
    user_id: &str,
) -> ApiResult<EndUser> {
    let env = environment_of(svc, caller, environment_id).await?;
    let user_id = checked_user(user_id)?.into_inner();
    let held =
        std::sync::Arc::unwrap_or_clone(svc.store().connections_of_user(&env.id, &user_id).await?);
    if held.is_empty() && svc.store().end_user(&env.id, &user_id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    Ok(EndUser {
        user_id,
        environment_id: env.id,
        held,
    })
}

/// Erases everything of an end user in the environment; their connect
/// tokens stop working.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn erase(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    environment_id: Option<String>,
    user_id: &str,
) -> ApiResult<()> {
    let env = environment_of(svc, caller, environment_id).await?;
    let user_id = checked_user(user_id)?.into_inner();
    let exists = svc.store().end_user(&env.id, &user_id).await?.is_some()
        || !svc
            .store()
            .connections_of_user(&env.id, &user_id)
            .await?
            .is_empty();
    if !exists {
        return Err(ApiError::NotFound);
    }
    let effects = audit::effects(
        caller.into(),
        "end_user.erased",
        ("end_user", &user_id),
        &environment_reach(&env),
        origin,
    );
    svc.store()
        .erase_end_user(&env.id, &user_id, now_ms() / 1000, &effects)
        .await?;
    svc.forget_connect_tokens(&env.id, &user_id).await;
    Ok(())
}

/// Deletes one connection or account of the end user.
#[tracing::instrument(skip_all, fields(caller = %caller.id, connection = %connection_id))]
pub async fn delete_connection(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    environment_id: Option<String>,
    user_id: &str,
    connection_id: &str,
) -> ApiResult<()> {
    let env = environment_of(svc, caller, environment_id).await?;
    let user_id = checked_user(user_id)?;
    let reach = environment_reach(&env);
    svc.store()
        .delete_connection(&env.id, user_id.as_str(), connection_id, |row| {
            let target = row.kind.as_str();
            audit::effects(
                caller.into(),
                &format!("{target}.deleted"),
                (target, &row.id),
                &reach,
                origin,
            )
            .announce(events::of_connection("connection.deleted", row))
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(())
}

/// Revokes every connect token issued to the end user until now.
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn revoke_tokens(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    environment_id: Option<String>,
    user_id: &str,
) -> ApiResult<()> {
    let env = environment_of(svc, caller, environment_id).await?;
    let user_id = checked_user(user_id)?.into_inner();
    let effects = audit::effects(
        caller.into(),
        "connect_token.revoked",
        ("end_user", &user_id),
        &environment_reach(&env),
        origin,
    );
    svc.store()
        .revoke_end_user_tokens(&env.id, &user_id, now_ms() / 1000, &effects)
        .await?;
    svc.forget_connect_tokens(&env.id, &user_id).await;
    Ok(())
}

/// The end user's active credentials for an app, decrypted; every call is
/// audited.
#[tracing::instrument(skip_all, fields(caller = %caller.id, app = %app_id))]
pub async fn reveal(
    svc: &Services,
    caller: &Principal,
    origin: &Origin,
    app_id: &str,
    user_id: &str,
) -> ApiResult<Vec<Revealed>> {
    let app = visibility::app(svc, caller, app_id).await?;
    let user_id = checked_user(user_id)?.into_inner();
    let rows = svc
        .store()
        .connections_for_app(&app.environment_id, &app.id, &user_id)
        .await?;
    let mut out = Vec::new();
    for row in rows
        .into_iter()
        .filter(|r| r.status == ConnectionStatus::Active)
    {
        if row.provider_ref.is_some() {
            // OAuth2: a working access token (refreshed first when it is
            // about to expire), never the refresh token; none at all when
            // it expired and cannot be refreshed now.
            if let Some(config) = oauth2::tokens::reveal(svc, &row).await? {
                out.push(Revealed {
                    requirement_name: row.requirement_name,
                    kind: row.r#type,
                    config,
                });
            }
            continue;
        }
        if row.kind != ConnectionKind::Connection {
            continue;
        }
        let (Some(sealed), Some(key_id)) =
            (row.sealed_config.as_deref(), row.master_key_id.as_deref())
        else {
            continue;
        };
        let plain = svc.keyring().open(key_id, sealed, row.id.as_bytes())?;
        let config: Value = serde_json::from_slice(&plain).map_err(ApiError::internal)?;
        out.push(Revealed {
            requirement_name: row.requirement_name,
            kind: row.r#type,
            config,
        });
    }
    audit::record(
        svc,
        caller.into(),
        "credentials.revealed",
        ("end_user", &user_id),
        &app_reach(&app),
        origin,
    )
    .await?;
    Ok(out)
}
