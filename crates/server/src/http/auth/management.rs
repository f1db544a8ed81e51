//! The management API's caller (SPEC §3): who may call, and the route's
//! permission ("Route → scope": the resource follows the path; `GET` needs
//! `<resource>:read`, any other method `<resource>:write`).

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, MatchedPath},
    http::{request::Parts, Method},
};
use gatehouse_core::Scope;

use super::{bearer, refused, session};
use crate::{
    error::{ApiError, ApiResult},
    service::{
        authenticate,
        limits::{self, Meter},
        principal::Principal,
    },
    state::AppState,
};

/// What a management route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePolicy {
    pub scope: Option<Scope>,
    /// Only a user's own credential (PAT or session), never an access key.
    pub user_only: bool,
}

/// SPEC §3 "Route → scope": the resource follows the path; `GET` needs
/// `<resource>:read`, any other method `<resource>:write`.
pub fn route_policy(method: &Method, path: &str) -> RoutePolicy {
    let read = *method == Method::GET || *method == Method::HEAD;
    let pick = |r: Scope, w: Scope| Some(if read { r } else { w });
    let rest = path.strip_prefix("/v1/").unwrap_or(path);
    let resource = rest.split('/').next().unwrap_or("");
    let scope = match resource {
        "tokens" => None,
        "access-keys" | "personal-access-tokens" => pick(Scope::KeysRead, Scope::KeysWrite),
        "apps" if rest.ends_with("/credentials") => Some(Scope::ConnectionsReveal),
        "apps" | "oauth2-providers" => pick(Scope::AppsRead, Scope::AppsWrite),
        "end-users" if rest.contains("/connections") => {
            pick(Scope::ConnectionsRead, Scope::ConnectionsWrite)
        }
        "end-users" => pick(Scope::EndUsersRead, Scope::EndUsersWrite),
        "audit-events" => Some(Scope::AuditRead),
        "webhooks" => pick(Scope::WebhooksRead, Scope::WebhooksWrite),
        "projects" | "environments" | "organization" => {
            pick(Scope::ProjectsRead, Scope::ProjectsWrite)
        }
        _ => None,
    };
    RoutePolicy {
        scope,
        user_only: resource == "personal-access-tokens",
    }
}

/// An authenticated management caller that holds the route's permission:
/// an access key or PAT as a bearer token, or a dashboard session cookie
/// (with its CSRF header on writes). A valid connect token here is 403.
/// The caller is charged its rate limits before the route's permission is
/// checked; a request without a valid credential is charged to its IP.
pub struct Auth(pub Arc<Principal>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str())
            .unwrap_or("");
        let meter = Meter::current();
        let principal = match authenticate(parts, state, &meter).await {
            Ok(principal) => principal,
            Err(err) => return Err(refused(state, parts, err).await),
        };
        authorize(principal, &parts.method, path).map(Auth)
    }
}

/// The caller behind a request's bearer token or session cookie, charged
/// its rate limits.
async fn authenticate(parts: &Parts, state: &AppState, meter: &Meter) -> ApiResult<Arc<Principal>> {
    let Some(token) = bearer(parts)? else {
        let session = session::from_cookie(parts, state)
            .await?
            .ok_or(ApiError::Unauthorized("missing"))?;
        limits::caller(state, meter, &session.principal).await?;
        if !session.csrf_ok {
            return Err(ApiError::forbidden(
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
        return Ok(session.principal);
    };
    if authenticate::looks_like_jwt(token) && !authenticate::is_key_or_pat(state, token) {
        let connect = authenticate::connect_token(state, token).await?;
        limits::connect_caller(state, meter, &connect).await?;
        return Err(ApiError::forbidden(
            "credential",
            "connect tokens are accepted only by the /v1/connect/* routes",
        ));
    }
    let principal = authenticate::credential(state, token).await?;
    limits::caller(state, meter, &principal).await?;
    Ok(principal)
}

/// Applies a route's policy (SPEC §3) to an authenticated caller.
fn authorize(principal: Arc<Principal>, method: &Method, path: &str) -> ApiResult<Arc<Principal>> {
    let policy = route_policy(method, path);
    if policy.user_only && !principal.kind.is_user() {
        return Err(ApiError::forbidden(
            "credential",
            "personal access tokens are managed with a personal access token or a dashboard session, not an access key",
        ));
    }
    if let Some(scope) = policy.scope {
        if !principal.scopes.contains(scope) {
            return Err(ApiError::forbidden(
                "scope",
                format!("requires the {scope} scope"),
            ));
        }
    }
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths map to the scopes of SPEC §3.
    #[test]
    fn route_scopes() {
        let s = |m: Method, p: &str| route_policy(&m, p).scope;
        assert_eq!(s(Method::GET, "/v1/access-keys"), Some(Scope::KeysRead));
        assert_eq!(
            s(Method::POST, "/v1/access-keys/{id}/rotate"),
            Some(Scope::KeysWrite)
        );
        assert_eq!(
            s(Method::DELETE, "/v1/personal-access-tokens/{id}"),
            Some(Scope::KeysWrite)
        );
        assert_eq!(
            s(Method::POST, "/v1/apps/{id}/deployments"),
            Some(Scope::AppsWrite)
        );
        assert_eq!(
            s(Method::GET, "/v1/apps/{id}/end-users/{user_id}/credentials"),
            Some(Scope::ConnectionsReveal)
        );
        assert_eq!(
            s(Method::GET, "/v1/end-users/{user_id}"),
            Some(Scope::EndUsersRead)
        );
        assert_eq!(
            s(
                Method::DELETE,
                "/v1/end-users/{user_id}/connections/{conn_id}"
            ),
            Some(Scope::ConnectionsWrite)
        );
        assert_eq!(s(Method::GET, "/v1/audit-events"), Some(Scope::AuditRead));
        assert_eq!(
            s(Method::PATCH, "/v1/organization/members/{id}"),
            Some(Scope::ProjectsWrite)
        );
        assert_eq!(
            s(Method::GET, "/v1/environments/{id}"),
            Some(Scope::ProjectsRead)
        );
        assert_eq!(s(Method::GET, "/v1/tokens/me"), None);
        assert!(route_policy(&Method::GET, "/v1/personal-access-tokens").user_only);
        assert!(!route_policy(&Method::GET, "/v1/access-keys").user_only);
    }
}
