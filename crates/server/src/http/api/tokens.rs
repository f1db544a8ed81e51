//! `/v1/tokens/me`: who am I? Introspects the calling access key or PAT.

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use gatehouse_core::time::{format_ms, now_ms};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ApiResult},
    http::{
        auth::Auth,
        openapi::ErrorEnvelope,
        response::{json_text, ok, Data},
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
pub async fn me(State(svc): State<Services>, Auth(p): Auth) -> ApiResult<Response> {
    let Some(record) = p.credential.as_ref() else {
        return Err(ApiError::forbidden(
            "credential",
            "signed in with a dashboard session, not a token: see GET /v1/session",
        ));
    };
    let kind = p.kind.as_str();
    let now = now_ms();
    // From its second request on, the body is made once per cached
    // credential, and only the `last_used_at` value is written per
    // request. The first is serialised whole: a key seen once (most of
    // them, when more keys are in use than the cache holds) keeps no
    // template.
    let template = match p.memo.introspection.get() {
        Some(template) => template.as_ref(),
        None if p.memo.introspected.set(()).is_ok() => None,
        None => p
            .memo
            .introspection
            .get_or_init(|| TokenIntrospection::template(kind, record, now))
            .as_ref(),
    };
    // This request is a use (noted when it was authenticated), and the
    // newest this node knows.
    let last_used = CredentialView::last_used(record, Some(now));
    if let (Some((before, after)), Some(at)) = (template, last_used) {
        let second = at.div_euclid(1000);
        if let Some(body) = p.memo.introspection_body.get(second) {
            return Ok(json_text(body));
        }
        let at = format_ms(at);
        let mut body = String::with_capacity(before.len() + at.len() + 2 + after.len());
        body.push_str(before);
        body.push('"');
        body.push_str(&at);
        body.push('"');
        body.push_str(after);
        let body = Bytes::from(body);
        p.memo.introspection_body.set(second, body.clone());
        return Ok(json_text(body));
    }
    Ok(ok(TokenIntrospection {
        kind: kind.to_string(),
        credential: CredentialView::of(&svc, record),
    })
    .into_response())
}
