//! `/v1/tokens/me`: who am I? Introspects the calling access key or PAT.

use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult},
    http::{
        auth::Auth,
        openapi::ErrorEnvelope,
        response::{ok, Data},
        views::{CredentialView, TokenIntrospection},
    },
    service::Services,
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The calling credential, without its token. Needs no scope.
#[utoipa::path(get, path = "/v1/tokens/me", tag = "tokens",
    responses((status = 200, body = Data<TokenIntrospection>), (status = "4XX", body = ErrorEnvelope)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(caller = %p.id))]
pub async fn me(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Data<TokenIntrospection>> {
    let Some(record) = p.credential.as_ref() else {
        return Err(ApiError::forbidden(
            "credential",
            "signed in with a dashboard session, not a token: see GET /v1/session",
        ));
    };
    Ok(ok(TokenIntrospection {
        kind: p.kind.as_str().to_string(),
        credential: CredentialView::of(&svc, record),
    }))
}
