//! The dashboard's session cookie (SPEC §7): HttpOnly, SameSite=Lax,
//! Secure when `public_url` is https, holding a random token of which only
//! the SHA-256 is stored. Every state-changing request made with the cookie
//! must carry `X-CSRF-Token`, derived from the session token, so a page on
//! another site can never act with it.

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method},
    response::{IntoResponse, Redirect, Response},
};
use cookie::{time::Duration, Cookie, SameSite};
use gatehouse_store::members::User;

use crate::{
    crypto::tokens::{csrf_for, same},
    error::{ApiError, ApiResult},
    service::{principal::Principal, sessions},
    state::AppState,
};

/// The session cookie.
pub const COOKIE: &str = "gh_session";
/// The sign-in form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "gh_login_csrf";
/// The header that carries the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}

/// A `Set-Cookie` value: HttpOnly, Path=/, the given SameSite, Secure
/// behind https.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: i64,
    same_site: SameSite,
) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .max_age(Duration::seconds(max_age_seconds))
        .secure(state.config().public_url.starts_with("https://"))
        .build();
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("gh_invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear_cookie(state: &AppState, name: &str, same_site: SameSite) -> HeaderValue {
    set_cookie(state, name, "", 0, same_site)
}

/// The live session behind a request's cookie, and whether the request
/// carries its CSRF token where one is needed (every write).
pub(super) struct CookieSession {
    pub principal: Arc<Principal>,
    pub csrf_ok: bool,
}

/// The session a request's cookie names: `Ok(None)` without a cookie, 401
/// for a cookie that names no live session.
pub(super) async fn from_cookie(
    parts: &Parts,
    state: &AppState,
) -> ApiResult<Option<CookieSession>> {
    let Some(token) = cookie(&parts.headers, COOKIE) else {
        return Ok(None);
    };
    let (principal, _) = sessions::lookup(state, token)
        .await?
        .ok_or(ApiError::Unauthorized("session"))?;
    let csrf_ok = matches!(parts.method, Method::GET | Method::HEAD) || {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        same(sent, &csrf_for(token))
    };
    Ok(Some(CookieSession { principal, csrf_ok }))
}

/// A signed-in dashboard user, for HTML pages: without a live session the
/// browser is sent to `/login`.
pub struct SignedIn {
    pub principal: Arc<Principal>,
    pub user: User,
    /// The session's CSRF token, for the page to send back.
    pub csrf: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match sessions::lookup(state, token).await {
            Ok(Some((principal, user))) => Ok(SignedIn {
                principal,
                user,
                csrf: csrf_for(token),
            }),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(err) => Err(err.into_response()),
        }
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Response> {
        match <SignedIn as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(s) => Ok(Some(s)),
            Err(r) if r.status().is_redirection() => Ok(None),
            Err(r) => Err(r),
        }
    }
}
