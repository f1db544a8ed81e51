//! `/v1/connect/*` on the management surface: what an end user, holding a
//! connect token, does on the hosted page or through the platform's own
//! UI: read the session and the app's requirements, submit credentials,
//! start an OAuth2 or action-connector link, disconnect, and revoke the
//! token itself.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use gatehouse_core::{
    new_id,
    requirement::{Requirement, RequirementType},
    time::{format_ms, now_ms},
    validate::BLANK,
    IdKind,
};
use gatehouse_store::{apps::App, connect::ConnectionRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::{
    catalog::AuthKind,
    connect_auth::{ConnectAuth, ConnectPrincipal},
    error::{ApiError, ApiResult},
    http::{
        apps::requirements_of,
        extract::{ApiJson, RequestMeta},
        openapi::ErrorEnvelope,
        response::{ok, Data},
    },
    issue::Actor,
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connect/session", get(session).delete(end_session))
        .route("/v1/connect/requirements", get(requirements))
        .route("/v1/connect/requirements/status", get(requirements_status))
        .route(
            "/v1/connect/requirements/{id}/credentials",
            post(submit_credentials),
        )
        .route(
            "/v1/connect/requirements/{id}/oauth2/authorize",
            post(oauth2_authorize),
        )
        .route(
            "/v1/connect/requirements/{id}/action-connector/authorize",
            post(action_connector_authorize),
        )
        .route(
            "/v1/connect/requirements/{id}/connection",
            delete(disconnect),
        )
}

/// A requirement of the deployed version and what the user has for it.
pub struct RequirementState {
    pub requirement: Requirement,
    pub connection: Option<ConnectionRow>,
}

impl RequirementState {
    pub fn satisfied(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|c| self.requirement.satisfied_by(c))
    }
}

/// The requirements of the app's deployed version (none when nothing is
/// deployed).
pub async fn deployed_requirements(state: &AppState, app: &App) -> ApiResult<Vec<Requirement>> {
    let Some(version_id) = app.deployed_version_id.as_deref() else {
        return Ok(Vec::new());
    };
    let version = state
        .store()
        .version(&app.id, version_id)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "deployed version {version_id} of {} is missing",
                app.id
            ))
        })?;
    requirements_of(&version)
}

/// The deployed version's requirements, each with the user's connection or
/// account for it (if any). No deployed version: no requirements.
pub async fn requirement_states(
    state: &AppState,
    app: &App,
    user_id: &str,
) -> ApiResult<Vec<RequirementState>> {
    let requirements = deployed_requirements(state, app).await?;
    if requirements.is_empty() {
        return Ok(Vec::new());
    }
    let mut connections = state
        .store()
        .connections_for_app(&app.environment_id, &app.id, user_id)
        .await?;
    Ok(requirements
        .into_iter()
        .map(|requirement| {
            let at = connections
                .iter()
                .position(|c| c.requirement_name == requirement.name);
            RequirementState {
                connection: at.map(|i| connections.swap_remove(i)),
                requirement,
            }
        })
        .collect())
}

/// `GET /v1/connect/session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub user_id: String,
    pub app: SessionApp,
    pub expires_at: String,
    pub redirect_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionApp {
    pub name: String,
    pub hostname: String,
}

/// A requirement with the end user's status for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectRequirementView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub requirement: Requirement,
    /// `completed` or `pending`.
    pub status: &'static str,
    /// When it was satisfied.
    pub connected_at: Option<String>,
    /// For connection requirements: the connection type (title, `auth`,
    /// JSON Schema of `config`, which fields are secret), to build a form.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_type: Option<Value>,
}

/// `{id, name, status}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementStatusView {
    pub id: String,
    pub name: String,
    pub status: &'static str,
}

fn status_word(satisfied: bool) -> &'static str {
    if satisfied {
        "completed"
    } else {
        "pending"
    }
}

/// The end user's session: who, for which app, until when.
#[utoipa::path(get, path = "/v1/connect/session", tag = "connect",
    responses((status = 200, body = Data<SessionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn session(ConnectAuth(c): ConnectAuth) -> Data<SessionView> {
    ok(SessionView {
        user_id: c.claims.user_id.clone(),
        app: SessionApp {
            name: c.app.name.clone(),
            hostname: c.app.hostname.clone(),
        },
        expires_at: format_ms(c.claims.exp * 1000),
        redirect_url: c.claims.redirect_url.clone(),
    })
}

/// The app's requirements and the end user's status for each.
#[utoipa::path(get, path = "/v1/connect/requirements", tag = "connect",
    responses((status = 200, body = Data<Vec<ConnectRequirementView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn requirements(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Data<Vec<ConnectRequirementView>>> {
    let states = requirement_states(&state, &c.app, &c.claims.user_id).await?;
    let views = states
        .into_iter()
        .map(|s| {
            let satisfied = s.satisfied();
            let connection_type = s
                .requirement
                .connection_type()
                .and_then(|t| state.catalog().get(t))
                .map(|t| t.public_view());
            ConnectRequirementView {
                status: status_word(satisfied),
                connected_at: s
                    .connection
                    .filter(|_| satisfied)
                    .map(|c| format_ms(c.updated_at)),
                connection_type,
                requirement: s.requirement,
            }
        })
        .collect();
    Ok(ok(views))
}

/// Just the status of each requirement.
#[utoipa::path(get, path = "/v1/connect/requirements/status", tag = "connect",
    responses((status = 200, body = Data<Vec<RequirementStatusView>>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn requirements_status(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
) -> ApiResult<Data<Vec<RequirementStatusView>>> {
    let states = requirement_states(&state, &c.app, &c.claims.user_id).await?;
    Ok(ok(states
        .iter()
        .map(|s| RequirementStatusView {
            id: s.requirement.id.clone(),
            name: s.requirement.name.clone(),
            status: status_word(s.satisfied()),
        })
        .collect()))
}

/// The requirement `id` of the deployed version (404 otherwise).
async fn find_requirement(
    state: &AppState,
    c: &ConnectPrincipal,
    id: &str,
) -> ApiResult<Requirement> {
    deployed_requirements(state, &c.app)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)
}

/// Body of `POST /v1/connect/requirements/{id}/credentials`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitCredentials {
    /// The requirement's connection type, e.g. `dynamiq.connections.OpenAI`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Validated against the type's JSON Schema.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
}

fn actor(c: &ConnectPrincipal) -> (String, &'static str) {
    (c.actor_id(), "end_user")
}

/// Submit credentials for a connection requirement; replaces any previous
/// connection for it. Answers `{"message": "created"}`.
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/credentials", tag = "connect", params(("id" = String, Path)),
    request_body = SubmitCredentials,
    responses((status = 201, description = "`{\"message\": \"created\"}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn submit_credentials(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SubmitCredentials>,
) -> ApiResult<Response> {
    let requirement = find_requirement(&state, &c, &id).await?;
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
    let ctype = state.catalog().get(wanted).ok_or_else(|| {
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
    let plaintext = serde_json::to_vec(&config).map_err(|e| ApiError::Internal(e.into()))?;
    let (master_key_id, sealed) = state
        .keyring()
        .seal(&plaintext, conn_id.as_bytes())
        .map_err(ApiError::Internal)?;
    let row = ConnectionRow {
        id: conn_id.clone(),
        kind: gatehouse_core::ConnectionKind::Connection,
        environment_id: c.app.environment_id.clone(),
        app_id: c.app.id.clone(),
        user_id: c.claims.user_id.clone(),
        requirement_name: requirement.name.clone(),
        r#type: wanted.to_string(),
        status: gatehouse_core::ConnectionStatus::Active,
        label: None,
        sealed_config: Some(sealed),
        master_key_id: Some(master_key_id),
        created_at: now,
        updated_at: now,
    };
    state.store().replace_connection(&row).await?;
    state
        .store()
        .touch_end_user(&c.app.environment_id, &c.claims.user_id, &c.app.id, now)
        .await?;
    let (actor_id, kind) = actor(&c);
    state
        .audit_as(
            Actor {
                kind,
                id: &actor_id,
            },
            "connection.created",
            ("connection", &conn_id),
            &c.reach(),
            &meta,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"message": "created"}))).into_response())
}

/// Start an OAuth2 connection. Needs an OAuth2 provider configured for the
/// connection type in this environment (`[oauth2_providers.<name>]`).
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/oauth2/authorize", tag = "connect", params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn oauth2_authorize(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let requirement = find_requirement(&state, &c, &id).await?;
    let Some(ctype) = requirement.connection_type() else {
        return Err(ApiError::field(
            "requirement",
            "is fulfilled by linking an account: use action-connector/authorize",
        ));
    };
    if state
        .catalog()
        .get(ctype)
        .is_none_or(|t| t.auth() != AuthKind::OAuth2)
    {
        return Err(ApiError::field(
            "requirement",
            format!("{ctype} takes credentials: use credentials"),
        ));
    }
    authorize_unavailable(&state, &c.app, ctype)
}

/// Start linking an action-connector account (OAuth2 at the connector).
#[utoipa::path(post, path = "/v1/connect/requirements/{id}/action-connector/authorize", tag = "connect",
    params(("id" = String, Path)),
    responses((status = 200, description = "`{\"data\": {\"url\"}}`"), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn action_connector_authorize(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let requirement = find_requirement(&state, &c, &id).await?;
    if requirement.kind != RequirementType::ActionConnectorAccount {
        return Err(ApiError::field(
            "requirement",
            "is a connection: use credentials or oauth2/authorize",
        ));
    }
    let slug = requirement.app_slug().unwrap_or_default().to_string();
    authorize_unavailable(&state, &c.app, &slug)
}

/// The OAuth2 redirect flow is not part of this release: say so precisely,
/// distinguishing a missing provider from a configured one.
fn authorize_unavailable(state: &AppState, app: &App, what: &str) -> ApiResult<Response> {
    match state.config().oauth2_provider_for(&app.environment_id, what) {
        None => Err(ApiError::field(
            "requirement",
            format!("no OAuth2 provider is configured for {what} in this environment"),
        )),
        Some((name, _)) => Err(ApiError::field(
            "requirement",
            format!("OAuth2 provider {name:?} is configured, but this Gatehouse version does not run the OAuth2 flow yet"),
        )),
    }
}

/// The end user disconnects a requirement: 204, also when nothing was connected.
#[utoipa::path(delete, path = "/v1/connect/requirements/{id}/connection", tag = "connect", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id, requirement = %id))]
pub async fn disconnect(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let requirement = find_requirement(&state, &c, &id).await?;
    let removed = state
        .store()
        .delete_connection_for_requirement(
            &c.app.environment_id,
            &c.app.id,
            &c.claims.user_id,
            &requirement.name,
        )
        .await?;
    if let Some(conn_id) = removed {
        let (actor_id, kind) = actor(&c);
        state
            .audit_as(
                Actor {
                    kind,
                    id: &actor_id,
                },
                "connection.deleted",
                ("connection", &conn_id),
                &c.reach(),
                &meta,
            )
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The connect token revokes itself: 204, and it fails from the next request.
#[utoipa::path(delete, path = "/v1/connect/session", tag = "connect",
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
pub async fn end_session(
    State(state): State<AppState>,
    ConnectAuth(c): ConnectAuth,
    meta: RequestMeta,
) -> ApiResult<StatusCode> {
    state
        .store()
        .revoke_connect_token(&c.claims.jti, c.claims.exp + 60)
        .await?;
    state.connect_cache().invalidate(&c.token_hash);
    if let Err(err) = state.store().announce_invalidation("connect").await {
        tracing::warn!(error = %err, "could not announce a connect-token revocation");
    }
    let (actor_id, kind) = actor(&c);
    state
        .audit_as(
            Actor {
                kind,
                id: &actor_id,
            },
            "connect_token.revoked",
            ("connect_token", &c.claims.jti),
            &c.reach(),
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
