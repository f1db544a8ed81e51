//! Routes on an app's own hostname (SPEC §6): the platform's backend mints
//! connect tokens for its end users and asks whether a user is ready.
//! Private apps need an access key with `connect:write` reaching the app's
//! environment; public apps need nothing.

use axum::{
    extract::State,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use gatehouse_core::{
    requirement::Requirement,
    time::{format_ms, now_ms},
    validate::BLANK,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    connect_auth::AppAccess,
    error::{ApiError, ApiResult, FieldErrors},
    http::{
        apps::app_reach,
        connect::requirement_states,
        extract::{ApiJson, QueryMap, RequestMeta},
        openapi::ErrorEnvelope,
    },
    issue::Actor,
    signing::ConnectClaims,
    state::AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connect/tokens", post(mint))
        .route("/v1/requirements/status", get(status))
}

/// The longest and default connect-token lifetime: 24 hours.
pub const MAX_TTL_SECONDS: i64 = 86_400;

/// Body of `POST /v1/connect/tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    /// The platform's id for its end user: 1–250 characters.
    pub user_id: Option<String>,
    /// 60–86400, default 86400.
    pub ttl_seconds: Option<i64>,
    /// Where the hosted page sends the user when all is set: absolute
    /// https (http only for localhost and *.localhost).
    pub redirect_url: Option<String>,
}

/// `{token, url, expires_at}`, bare.
#[derive(Debug, Serialize, ToSchema)]
pub struct MintedToken {
    pub token: String,
    pub url: String,
    pub expires_at: String,
}

/// `{status, unsatisfied}`, bare.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementsStatus {
    /// `complete` or `incomplete`.
    pub status: &'static str,
    #[schema(value_type = Vec<Object>)]
    pub unsatisfied: Vec<Requirement>,
}

/// An end user id: 1–250 characters, no control characters.
pub fn parse_user_id(raw: Option<&str>) -> Result<String, String> {
    match raw {
        None | Some("") => Err(BLANK.into()),
        Some(s) if s.trim().is_empty() => Err(BLANK.into()),
        Some(s) if s.chars().count() > 250 => Err("must be at most 250 characters".into()),
        Some(s) if s.chars().any(char::is_control) => {
            Err("must not contain control characters".into())
        }
        Some(s) => Ok(s.to_string()),
    }
}

/// An absolute https URL, or http for `localhost` and `*.localhost`.
pub fn parse_redirect_url(raw: &str) -> Result<String, String> {
    let bad = || "must be an absolute https URL (http only for localhost)".to_string();
    let uri: Uri = raw.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?.to_ascii_lowercase();
    let local = host == "localhost" || host.ends_with(".localhost");
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if local => {}
        _ => return Err(bad()),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("must not contain credentials".into());
    }
    Ok(raw.to_string())
}

/// Mint a connect token for an end user of this app, and the URL of the
/// hosted connect page with the token in it.
#[utoipa::path(post, path = "/v1/connect/tokens", tag = "app surface", request_body = MintToken,
    responses((status = 201, body = MintedToken), (status = "4XX", body = ErrorEnvelope)),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(app = %access.app.id))]
pub async fn mint(
    State(state): State<AppState>,
    access: AppAccess,
    meta: RequestMeta,
    ApiJson(body): ApiJson<MintToken>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::new();
    let user_id = errors.check("user_id", parse_user_id(body.user_id.as_deref()));
    let ttl = body.ttl_seconds.unwrap_or(MAX_TTL_SECONDS);
    if !(60..=MAX_TTL_SECONDS).contains(&ttl) {
        errors.add(
            "ttl_seconds",
            format!("must be a whole number from 60 to {MAX_TTL_SECONDS}"),
        );
    }
    let redirect_url = match body.redirect_url.as_deref() {
        None => None,
        Some(raw) => errors.check("redirect_url", parse_redirect_url(raw)),
    };
    errors.finish()?;
    let user_id = user_id.ok_or_else(|| ApiError::field("user_id", BLANK))?;
    let app = &access.app;
    let now = now_ms() / 1000;
    let claims = ConnectClaims {
        sub: user_id.clone(),
        user_id: user_id.clone(),
        app_id: app.id.clone(),
        environment_id: app.environment_id.clone(),
        iss: state.config().public_url.clone(),
        aud: crate::signing::AUDIENCE.to_string(),
        iat: now,
        nbf: now,
        exp: now + ttl,
        jti: ulid::Ulid::new().to_string().to_ascii_lowercase(),
        redirect_url,
    };
    let token = state
        .signing()
        .sign(&claims)
        .await
        .map_err(ApiError::Internal)?;
    state
        .store()
        .touch_end_user(&app.environment_id, &user_id, &app.id, now * 1000)
        .await?;
    let (kind, actor_id) = match &access.key {
        Some(k) => (k.actor_kind(), k.id().to_string()),
        None => ("public", "anonymous".to_string()),
    };
    state
        .audit_as(
            Actor {
                kind,
                id: &actor_id,
            },
            "connect_token.created",
            ("end_user", &user_id),
            &app_reach(app),
            &meta,
        )
        .await?;
    let url = format!("{}/connect?token={}", state.config().public_url, token);
    let body = MintedToken {
        token,
        url,
        expires_at: format_ms(claims.exp * 1000),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Is this end user ready? `complete` when every requirement of the
/// deployed version is satisfied, else `incomplete` with the rest.
#[utoipa::path(get, path = "/v1/requirements/status", tag = "app surface", params(("user_id" = String, Query)),
    responses((status = 200, body = RequirementsStatus), (status = "4XX", body = ErrorEnvelope)),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(app = %access.app.id))]
pub async fn status(
    State(state): State<AppState>,
    access: AppAccess,
    query: QueryMap,
) -> ApiResult<Json<RequirementsStatus>> {
    let user_id = parse_user_id(query.get("user_id")).map_err(|m| ApiError::field("user_id", m))?;
    let states = requirement_states(&state, &access.app, &user_id).await?;
    let unsatisfied: Vec<Requirement> = states
        .into_iter()
        .filter(|s| !s.satisfied())
        .map(|s| s.requirement)
        .collect();
    Ok(Json(RequirementsStatus {
        status: if unsatisfied.is_empty() {
            "complete"
        } else {
            "incomplete"
        },
        unsatisfied,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redirects are https, or http on localhost only.
    #[test]
    fn redirect_urls() {
        assert!(parse_redirect_url("https://app.example.com/done?x=1").is_ok());
        assert!(parse_redirect_url("http://localhost:3000/done").is_ok());
        assert!(parse_redirect_url("http://acme.localhost/done").is_ok());
        assert!(parse_redirect_url("http://example.com/done").is_err());
        assert!(parse_redirect_url("javascript:alert(1)").is_err());
        assert!(parse_redirect_url("/relative").is_err());
        assert!(parse_redirect_url("https://user:pw@example.com/").is_err());
    }
}
