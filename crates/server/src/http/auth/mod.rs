//! Authentication lives in extractors (SPEC §3, §6, §7): a handler that
//! takes [`Auth`], [`ConnectAuth`], [`AppAccess`] or [`SignedIn`] only runs
//! for a caller that route accepts, so a request is refused (401, then 403)
//! before its body is parsed (400). The checks themselves are
//! [`crate::service::authenticate`] and [`crate::service::sessions`].
//!
//! The extractors also charge the rate limits (SPEC §8): an authenticated
//! caller its `credential` (and `environment`) right after authentication,
//! before any 403; a request without a valid credential its client's `ip`
//! ([`refused`]), so a 429 may come before the 401.

mod connect;
mod management;
mod session;

use axum::http::{header, request::Parts};

pub use connect::{AppAccess, AppSurface, ConnectAuth};
pub use management::{route_policy, Auth, RoutePolicy};
pub use session::{
    clear_cookie, cookie, set_cookie, SignedIn, COOKIE, CSRF_HEADER, LOGIN_CSRF_COOKIE,
};

use crate::{
    error::{ApiError, ApiResult},
    http::extract::client_ip,
    service::limits::{self, Meter},
    state::AppState,
};

/// What a request whose credential was missing or failed answers: it is
/// charged to its client's `ip` first (so guessing keys is limited like
/// any unauthenticated traffic), and a used-up limit answers 429 instead
/// of the 401. Any other error passes through.
pub async fn refused(state: &AppState, parts: &Parts, err: ApiError) -> ApiError {
    if !matches!(err, ApiError::Unauthorized(_)) {
        return err;
    }
    let ip = client_ip(parts, state.config());
    match limits::anonymous(state, &Meter::current(), ip.as_deref()).await {
        Err(limited) => limited,
        Ok(()) => err,
    }
}

/// The bearer token of a request, if it sent one; a malformed
/// `Authorization` header is 401.
pub fn bearer(parts: &Parts) -> ApiResult<Option<&str>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("malformed"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("malformed"));
    }
    Ok(Some(token.trim()))
}
