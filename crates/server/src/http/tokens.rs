//! `/v1/tokens/me`: who am I? Introspects the calling access key or PAT.

use axum::{extract::State, routing::get, Router};

use crate::{
    auth::Auth,
    error::{ApiError, ApiResult},
    http::{
        credentials,
        openapi::ErrorEnvelope,
        response::{ok, Data},
        views::TokenIntrospection,
    },
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tokens/me", get(me))
}

/// The calling credential, without its token. Needs no scope.
#[utoipa::path(get, path = "/v1/tokens/me", tag = "tokens",
    responses((status = 200, body = Data<TokenIntrospection>), (status = 401, body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id()))]
pub async fn me(
    State(state): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Data<TokenIntrospection>> {
    if p.session {
        return Err(ApiError::forbidden(
            "credential",
            "signed in with a dashboard session, not a token: see GET /v1/session",
        ));
    }
    Ok(ok(TokenIntrospection {
        kind: p.kind.as_str().to_string(),
        credential: credentials::view(&state, &p.record),
    }))
}
