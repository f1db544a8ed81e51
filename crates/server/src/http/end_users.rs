//! `/v1/end-users`: the platform's view of its end users in an
//! environment (no secrets), erasure, disconnection and connect-token
//! revocation; and `GET /v1/apps/{id}/end-users/{user_id}/credentials`, the
//! one route that returns decrypted credentials (`connections:reveal`).
//! `user_id` in a path is percent-decoded.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use gatehouse_core::{
    time::{format_ms, now_ms},
    Reach,
};
use gatehouse_store::tenancy::Environment;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    auth::{Auth, Principal},
    error::{ApiError, ApiResult},
    http::environments::visible_environment,
    http::{
        app_surface::parse_user_id,
        apps::{app_reach, visible_app},
        extract::{QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
        response::{ok, Data, List},
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/end-users", get(list))
        .route("/v1/end-users/{user_id}", get(show).delete(erase))
        .route(
            "/v1/end-users/{user_id}/connections/{conn_id}",
            axum::routing::delete(delete_connection),
        )
        .route(
            "/v1/end-users/{user_id}/connect-tokens/revoke",
            post(revoke_tokens),
        )
        .route("/v1/apps/{id}/end-users/{user_id}/credentials", get(reveal))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndUserSummaryView {
    pub user_id: String,
    pub environment_id: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `conn_…`
    pub id: String,
    pub app_id: String,
    pub requirement_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `active`, `pending` or `failed`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// `acct_…`
    pub id: String,
    pub app_id: String,
    pub requirement_name: String,
    pub app_slug: String,
    pub label: Option<String>,
    pub created_at: String,
}

/// An end user and what they connected, without secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndUserView {
    pub user_id: String,
    pub environment_id: String,
    pub connections: Vec<ConnectionView>,
    pub accounts: Vec<AccountView>,
}

/// A decrypted credential for the app's runtime.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedCredential {
    pub requirement_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub config: Value,
}

/// The environment named by `?environment_id=` (optional for an
/// environment-scoped credential), if the caller sees it.
async fn environment_of(
    state: &AppState,
    p: &Principal,
    query: &QueryMap,
) -> ApiResult<Environment> {
    let id = query
        .string("environment_id")
        .or_else(|| p.reach.environment_id.clone())
        .ok_or_else(|| {
            ApiError::field(
                "environment_id",
                "cannot be blank (or use an environment-scoped key)",
            )
        })?;
    let env = visible_environment(state, &p.reach, &id).await?;
    Ok(env)
}

fn env_reach(env: &Environment) -> Reach {
    Reach {
        organization_id: env.organization_id.clone(),
        project_id: Some(env.project_id.clone()),
        environment_id: Some(env.id.clone()),
    }
}

fn checked_user(raw: &str) -> ApiResult<String> {
    parse_user_id(Some(raw)).map_err(|m| ApiError::field("user_id", m))
}

/// End users of an environment, optionally of one app.
#[utoipa::path(get, path = "/v1/end-users", tag = "end users",
    params(("environment_id" = Option<String>, Query), ("app_id" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("page_size" = Option<u32>, Query)),
    responses((status = 200, body = List<EndUserSummaryView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<EndUserSummaryView>> {
    let page = query.page()?;
    let env = environment_of(&state, &p, &query).await?;
    let app_id = match query.string("app_id") {
        Some(id) => {
            let app = visible_app(&state, &p, &id).await?;
            if app.environment_id != env.id {
                return Err(ApiError::NotFound);
            }
            Some(app.id)
        }
        None => None,
    };
    let found = state
        .store()
        .list_end_users(&env.id, app_id.as_deref(), page)
        .await?;
    Ok(List::new(
        found.map(|u| EndUserSummaryView {
            user_id: u.user_id,
            environment_id: env.id.clone(),
            created_at: format_ms(u.created_at),
        }),
        page,
    ))
}

/// One end user's connections and accounts (no secrets).
#[utoipa::path(get, path = "/v1/end-users/{user_id}", tag = "end users",
    params(("user_id" = String, Path), ("environment_id" = Option<String>, Query)),
    responses((status = 200, body = Data<EndUserView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn show(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<Data<EndUserView>> {
    let env = environment_of(&state, &p, &query).await?;
    let user_id = checked_user(&user_id)?;
    let rows = state.store().connections_of_user(&env.id, &user_id).await?;
    if rows.is_empty() && state.store().end_user(&env.id, &user_id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let (mut connections, mut accounts) = (Vec::new(), Vec::new());
    for r in rows {
        if r.kind == gatehouse_core::ConnectionKind::Account {
            accounts.push(AccountView {
                id: r.id,
                app_id: r.app_id,
                requirement_name: r.requirement_name,
                app_slug: r.r#type,
                label: r.label,
                created_at: format_ms(r.created_at),
            });
        } else {
            connections.push(ConnectionView {
                id: r.id,
                app_id: r.app_id,
                requirement_name: r.requirement_name,
                kind: r.r#type,
                status: r.status.to_string(),
                created_at: format_ms(r.created_at),
            });
        }
    }
    Ok(ok(EndUserView {
        user_id,
        environment_id: env.id,
        connections,
        accounts,
    }))
}

/// Erase everything of an end user in the environment; their connect
/// tokens stop working.
#[utoipa::path(delete, path = "/v1/end-users/{user_id}", tag = "end users",
    params(("user_id" = String, Path), ("environment_id" = Option<String>, Query)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn erase(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    let env = environment_of(&state, &p, &query).await?;
    let user_id = checked_user(&user_id)?;
    let exists = state.store().end_user(&env.id, &user_id).await?.is_some()
        || !state
            .store()
            .connections_of_user(&env.id, &user_id)
            .await?
            .is_empty();
    if !exists {
        return Err(ApiError::NotFound);
    }
    state
        .store()
        .erase_end_user(&env.id, &user_id, now_ms() / 1000)
        .await?;
    state.forget_connect_tokens(&env.id, &user_id).await;
    state
        .audit(
            &p,
            "end_user.erased",
            ("end_user", &user_id),
            &env_reach(&env),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one connection or account of the end user.
#[utoipa::path(delete, path = "/v1/end-users/{user_id}/connections/{conn_id}", tag = "end users",
    params(("user_id" = String, Path), ("conn_id" = String, Path), ("environment_id" = Option<String>, Query)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), connection = %conn_id))]
pub async fn delete_connection(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path((user_id, conn_id)): Path<(String, String)>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    let env = environment_of(&state, &p, &query).await?;
    let user_id = checked_user(&user_id)?;
    let removed = state
        .store()
        .delete_connection(&env.id, &user_id, &conn_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let target = if removed.kind == gatehouse_core::ConnectionKind::Account {
        "account"
    } else {
        "connection"
    };
    state
        .audit(
            &p,
            &format!("{target}.deleted"),
            (target, &removed.id),
            &env_reach(&env),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every connect token issued to the end user until now.
#[utoipa::path(post, path = "/v1/end-users/{user_id}/connect-tokens/revoke", tag = "end users",
    params(("user_id" = String, Path), ("environment_id" = Option<String>, Query)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    let env = environment_of(&state, &p, &query).await?;
    let user_id = checked_user(&user_id)?;
    state
        .store()
        .revoke_end_user_tokens(&env.id, &user_id, now_ms() / 1000)
        .await?;
    state.forget_connect_tokens(&env.id, &user_id).await;
    state
        .audit(
            &p,
            "connect_token.revoked",
            ("end_user", &user_id),
            &env_reach(&env),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The end user's active credentials for an app, decrypted, for the app's
/// runtime. Needs `connections:reveal`; every call is audited.
#[utoipa::path(get, path = "/v1/apps/{id}/end-users/{user_id}/credentials", tag = "end users",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Data<Vec<RevealedCredential>>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id(), app = %id))]
pub async fn reveal(
    State(state): State<AppState>,
    Auth(p): Auth,
    meta: RequestMeta,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Data<Vec<RevealedCredential>>> {
    let app = visible_app(&state, &p, &id).await?;
    let user_id = checked_user(&user_id)?;
    let rows = state
        .store()
        .connections_for_app(&app.environment_id, &app.id, &user_id)
        .await?;
    let mut out = Vec::new();
    for row in rows.into_iter().filter(|r| {
        r.kind == gatehouse_core::ConnectionKind::Connection
            && r.status == gatehouse_core::ConnectionStatus::Active
    }) {
        let (Some(sealed), Some(key_id)) =
            (row.sealed_config.as_deref(), row.master_key_id.as_deref())
        else {
            continue;
        };
        let plain = state
            .keyring()
            .open(key_id, sealed, row.id.as_bytes())
            .map_err(ApiError::Internal)?;
        let config: Value =
            serde_json::from_slice(&plain).map_err(|e| ApiError::Internal(e.into()))?;
        out.push(RevealedCredential {
            requirement_name: row.requirement_name,
            kind: row.r#type,
            config,
        });
    }
    state
        .audit(
            &p,
            "connection.revealed",
            ("end_user", &user_id),
            &app_reach(&app),
            &meta,
        )
        .await?;
    Ok(ok(out))
}
