//! Dashboard sessions (SPEC §7): an HttpOnly, SameSite=Lax cookie holding a
//! random token (only its SHA-256 is stored), Secure when `public_url` is
//! https. A session acts like a personal access token holding the whole of
//! the user's role. Every state-changing request made with the cookie must
//! carry `X-CSRF-Token`, derived from the session token, so a page on
//! another site can never act with it.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderValue, Method},
    response::{IntoResponse, Redirect, Response},
};
use gatehouse_core::{new_id, time::now_ms, token::TokenHash, IdKind, Reach, TokenKind};
use gatehouse_store::{
    credentials::{Credential, CredentialRecord},
    members::User,
    sessions::{SessionRecord, SessionRow},
};
use rand::{distr::Alphanumeric, Rng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    auth::Principal,
    error::{ApiError, ApiResult},
    http::extract::RequestMeta,
    state::AppState,
};

/// The session cookie.
pub const COOKIE: &str = "gh_session";
/// The sign-in form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "gh_login_csrf";
/// The header that carries the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions end 12 hours after sign-in.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A fresh random token (43 alphanumerics, about 256 bits).
pub fn random_token() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect()
}

/// The CSRF token of a session: derived from the (secret) session token,
/// so nothing more is stored and a page without the cookie cannot know it.
pub fn csrf_for(session_token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gatehouse csrf\0")
        .chain_update(session_token.as_bytes())
        .finalize();
    hex::encode(&digest[..24])
}

/// Constant-time string equality.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, Path=/, SameSite as given, Secure behind https.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.config().public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_seconds}{secure}"
    );
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("gh_invalid=; Max-Age=0"))
}

fn principal_of(record: SessionRecord) -> Option<Principal> {
    let SessionRecord { session, user } = record;
    let role = user.role;
    let reach = Reach::organization(&user.organization_id);
    let credential = Credential {
        id: session.id.clone(),
        kind: TokenKind::PersonalAccessToken,
        name: "Dashboard session".into(),
        organization_id: user.organization_id.clone(),
        project_id: None,
        environment_id: None,
        user_id: user.id.clone(),
        via_key_id: None,
        scopes: role.scopes().to_storage(),
        token_hash: Vec::new(),
        checksum: String::new(),
        preview: String::new(),
        created_at: session.created_at,
        expires_at: Some(session.expires_at),
        last_used_at: None,
        revoked_at: None,
    };
    Some(Principal {
        kind: TokenKind::PersonalAccessToken,
        record: CredentialRecord {
            credential,
            user_email: user.email.clone(),
            user_role: user.role,
            user_deleted_at: None,
        },
        role: Some(role),
        reach,
        scopes: role.scopes(),
        session: true,
    })
}

/// The session a request's cookie names: `Ok(None)` without a cookie, 401
/// for a cookie that names no live session, 403 for a write without the
/// matching CSRF header.
pub async fn from_cookie(parts: &Parts, state: &AppState) -> ApiResult<Option<Arc<Principal>>> {
    let Some(token) = cookie(parts, COOKIE) else {
        return Ok(None);
    };
    let (principal, _) = lookup(state, token)
        .await?
        .ok_or(ApiError::Unauthorized("session"))?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same(sent, &csrf_for(token)) {
            return Err(ApiError::forbidden(
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
    }
    Ok(Some(principal))
}

async fn lookup(state: &AppState, token: &str) -> ApiResult<Option<(Arc<Principal>, User)>> {
    let hash = TokenHash::of(token);
    let Some(record) = state
        .store()
        .session_by_hash(hash.as_bytes(), now_ms())
        .await?
    else {
        return Ok(None);
    };
    let user = record.user.clone();
    Ok(principal_of(record).map(|p| (Arc::new(p), user)))
}

/// Starts a session for `user`: returns the cookie token (to set) and row.
pub async fn start(state: &AppState, user: &User, meta: &RequestMeta) -> ApiResult<String> {
    let token = random_token();
    let now = now_ms();
    let row = SessionRow {
        id: new_id(IdKind::Session),
        token_hash: TokenHash::of(&token).as_bytes().to_vec(),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
        revoked_at: None,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
    };
    state.store().create_session(&row).await?;
    Ok(token)
}

/// A signed-in dashboard user, for HTML pages: without a live session the
/// browser is sent to `/login`.
pub struct SignedIn {
    pub principal: Arc<Principal>,
    pub user: User,
    /// The session's CSRF token, for the page to send back.
    pub csrf: String,
}

/// Where a signed-out browser goes.
pub struct ToLogin;

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(parts, COOKIE) else {
            return Err(ToLogin.into_response());
        };
        match lookup(state, token).await {
            Ok(Some((principal, user))) => Ok(SignedIn {
                principal,
                user,
                csrf: csrf_for(token),
            }),
            Ok(None) => Err(ToLogin.into_response()),
            Err(err) => Err(err.into_response()),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for SignedIn {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// CSRF tokens are stable per session and differ between sessions.
    #[test]
    fn csrf_is_derived() {
        let a = random_token();
        let b = random_token();
        assert_eq!(csrf_for(&a), csrf_for(&a));
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert!(!csrf_for(&a).contains(&a));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
