//! `GET /v1/connect/session` (who, for which app, until when) and
//! `DELETE /v1/connect/session` (the connect token revokes itself).

use axum::{extract::State, http::StatusCode};
use gatehouse_core::time::format_ms;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::ApiResult,
    http::{
        auth::ConnectAuth,
        openapi::ErrorEnvelope,
        response::{ok, Data},
    },
    service::{audit::Origin, connect, Services},
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(session, end_session))
}

/// `GET /v1/connect/session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub user_id: String,
    pub app: SessionApp,
    pub expires_at: String,
    pub redirect_url: Option<String>,
    /// The same as `redirect_url`.
    pub success_redirect_url: Option<String>,
    pub error_redirect_url: Option<String>,
    /// Origins that may use this token from a browser (CORS) and receive
    /// the hosted page's completion message.
    pub allowed_origins: Vec<String>,
    /// Minted without a credential (a public app): it may connect what the
    /// user has not connected, but not replace or disconnect (SPEC §6).
    pub add_only: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionApp {
    pub name: String,
    pub hostname: String,
}

/// The end user's session: who, for which app, until when.
#[utoipa::path(get, path = "/v1/connect/session", tag = "connect",
    responses((status = 200, body = Data<SessionView>), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn session(ConnectAuth(c): ConnectAuth) -> Data<SessionView> {
    ok(SessionView {
        user_id: c.claims.user_id.clone(),
        app: SessionApp {
            name: c.app.name.clone(),
            hostname: c.app.hostname.clone(),
        },
        expires_at: format_ms(c.claims.exp * 1000),
        redirect_url: c.claims.redirect_url.clone(),
        success_redirect_url: c.claims.redirect_url.clone(),
        error_redirect_url: c.claims.error_redirect_url.clone(),
        allowed_origins: c.claims.allowed_origins.clone(),
        add_only: c.claims.minted_by.is_none(),
    })
}

/// The connect token revokes itself: 204, and it fails from the next request.
#[utoipa::path(delete, path = "/v1/connect/session", tag = "connect",
    responses((status = 204), (status = "4XX", body = ErrorEnvelope)),
    security(("connect_token" = [])))]
#[tracing::instrument(skip_all, fields(app = %c.app.id))]
pub async fn end_session(
    State(svc): State<Services>,
    ConnectAuth(c): ConnectAuth,
    origin: Origin,
) -> ApiResult<StatusCode> {
    connect::end_session(&svc, &c, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}
