//! `/v1/end-users`: the platform's view of its end users in an
//! environment (no secrets), erasure, disconnection and connect-token
//! revocation; and `GET /v1/apps/{id}/end-users/{user_id}/credentials`, the
//! one route that returns decrypted credentials (`connections:reveal`).
//! `user_id` in a path is percent-decoded.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use gatehouse_core::{time::format_ms, ConnectionKind};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::Auth,
        extract::QueryMap,
        openapi::ErrorEnvelope,
        response::{ok, Data, List},
        views::Sensitive,
    },
    service::{
        audit::Origin,
        end_users::{self, EndUser},
        schema::UserIdText,
        Services,
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, erase))
        .routes(routes!(delete_connection))
        .routes(routes!(revoke_tokens))
        .routes(routes!(reveal))
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
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// What last went wrong with the provider (OAuth2), in Gatehouse's words.
    pub last_error: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// `acct_…`
    pub id: String,
    pub app_id: String,
    pub requirement_name: String,
    pub app_slug: String,
    /// The signed-in account: email, else name, else subject.
    pub label: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// What last went wrong with the provider, in Gatehouse's words.
    pub last_error: Option<String>,
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

impl From<EndUser> for EndUserView {
    fn from(u: EndUser) -> Self {
        let (mut connections, mut accounts) = (Vec::new(), Vec::new());
        for r in u.held {
            match r.kind {
                ConnectionKind::Account => accounts.push(AccountView {
                    id: r.id,
                    app_id: r.app_id,
                    requirement_name: r.requirement_name,
                    app_slug: r.r#type,
                    label: r.label,
                    status: r.status.to_string(),
                    last_error: r.last_error.filter(|e| !e.is_empty()),
                    created_at: format_ms(r.created_at),
                }),
                ConnectionKind::Connection => connections.push(ConnectionView {
                    id: r.id,
                    app_id: r.app_id,
                    requirement_name: r.requirement_name,
                    kind: r.r#type,
                    status: r.status.to_string(),
                    last_error: r.last_error.filter(|e| !e.is_empty()),
                    created_at: format_ms(r.created_at),
                }),
            }
        }
        Self {
            user_id: u.user_id,
            environment_id: u.environment_id,
            connections,
            accounts,
        }
    }
}

/// A decrypted credential for the app's runtime.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedCredential {
    pub requirement_name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub config: Sensitive<Value>,
}

/// End users of an environment, optionally of one app.
#[utoipa::path(get, path = "/v1/end-users", tag = "end users",
    params(("environment_id" = Option<String>, Query), ("app_id" = Option<String>, Query),
           ("page" = Option<u32>, Query, minimum = 1, maximum = 4_194_303), ("page_size" = Option<u32>, Query, minimum = 1, maximum = 200)),
    responses((status = 200, body = List<EndUserSummaryView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn list(
    State(svc): State<Services>,
    Auth(p): Auth,
    query: QueryMap,
) -> ApiResult<List<EndUserSummaryView>> {
    let page = query.page()?;
    let (env, found) = end_users::list(
        &svc,
        &p,
        query.string("environment_id"),
        query.string("app_id"),
        page,
    )
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
    params(("user_id" = UserIdText, Path), ("environment_id" = Option<String>, Query, description = "Required unless the credential is confined to one environment.")),
    responses((status = 200, body = Data<EndUserView>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn show(
    State(svc): State<Services>,
    Auth(p): Auth,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<Data<EndUserView>> {
    let user = end_users::show(&svc, &p, query.string("environment_id"), &user_id).await?;
    Ok(ok(EndUserView::from(user)))
}

/// Erase everything of an end user in the environment; their connect
/// tokens stop working.
#[utoipa::path(delete, path = "/v1/end-users/{user_id}", tag = "end users",
    params(("user_id" = UserIdText, Path), ("environment_id" = Option<String>, Query, description = "Required unless the credential is confined to one environment.")),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn erase(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    end_users::erase(&svc, &p, &origin, query.string("environment_id"), &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete one connection or account of the end user.
#[utoipa::path(delete, path = "/v1/end-users/{user_id}/connections/{conn_id}", tag = "end users",
    params(("user_id" = UserIdText, Path), ("conn_id" = String, Path), ("environment_id" = Option<String>, Query, description = "Required unless the credential is confined to one environment.")),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, connection = %conn_id))]
pub async fn delete_connection(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path((user_id, conn_id)): Path<(String, String)>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    let env = query.string("environment_id");
    end_users::delete_connection(&svc, &p, &origin, env, &user_id, &conn_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every connect token issued to the end user until now.
#[utoipa::path(post, path = "/v1/end-users/{user_id}/connect-tokens/revoke", tag = "end users",
    params(("user_id" = UserIdText, Path), ("environment_id" = Option<String>, Query, description = "Required unless the credential is confined to one environment.")),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn revoke_tokens(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> ApiResult<StatusCode> {
    let env = query.string("environment_id");
    end_users::revoke_tokens(&svc, &p, &origin, env, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The end user's active credentials for an app, decrypted, for the app's
/// runtime. Needs `connections:reveal`; every call is audited.
#[utoipa::path(get, path = "/v1/apps/{id}/end-users/{user_id}/credentials", tag = "end users",
    params(("id" = String, Path), ("user_id" = UserIdText, Path)),
    responses((status = 200, body = Data<Vec<RevealedCredential>>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id, app = %id))]
pub async fn reveal(
    State(svc): State<Services>,
    Auth(p): Auth,
    origin: Origin,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<Data<Vec<RevealedCredential>>> {
    let revealed = end_users::reveal(&svc, &p, &origin, &id, &user_id).await?;
    Ok(ok(revealed
        .into_iter()
        .map(|r| RevealedCredential {
            requirement_name: r.requirement_name,
            kind: r.kind,
            config: Sensitive(r.config),
        })
        .collect()))
}
