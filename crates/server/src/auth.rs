//! Authentication and authorization of management requests.
//!
//! [`Auth`] reads `Authorization: Bearer <token>`, rejects a token whose
//! checksum fails without touching storage, finds the credential by the
//! SHA-256 of the token (from a bounded cache when seen recently), and then
//! applies the route's permission (SPEC §3 "Route → scope"), so a request
//! is refused (401, then 403) before its body is parsed (400).

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{FromRequestParts, MatchedPath},
    http::{header, request::Parts, Method},
};
use gatehouse_core::{
    time::now_ms,
    token::{self, TokenHash},
    Reach, Role, Scope, ScopeSet, TokenKind,
};
use gatehouse_store::credentials::CredentialRecord;

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

/// An authenticated caller: who, how far they reach, what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: TokenKind,
    pub record: CredentialRecord,
    /// The user behind the credential (a PAT's owner; a key's creator).
    pub role: Option<Role>,
    pub reach: Reach,
    /// Effective scopes: a PAT's stored scopes narrowed to its owner's role
    /// as it is now; an access key's stored scopes.
    pub scopes: ScopeSet,
    /// A signed-in dashboard user (cookie), acting like a PAT holding the
    /// whole of their role. `record` then describes the session.
    pub session: bool,
}

impl Principal {
    fn from_record(record: CredentialRecord) -> Option<Self> {
        let kind = record.credential.kind;
        let role = Some(record.user_role).filter(|_| record.user_deleted_at.is_none());
        let stored = ScopeSet::from_storage(&record.credential.scopes);
        let scopes = match kind {
            TokenKind::AccessKey => stored,
            TokenKind::PersonalAccessToken => role
                .map(|r| stored.intersect(r.scopes()))
                .unwrap_or_default(),
        };
        let reach = Reach {
            organization_id: record.credential.organization_id.clone(),
            project_id: record.credential.project_id.clone(),
            environment_id: record.credential.environment_id.clone(),
        };
        Some(Self {
            kind,
            record,
            role,
            reach,
            scopes,
            session: false,
        })
    }

    pub fn id(&self) -> &str {
        &self.record.credential.id
    }

    pub fn organization_id(&self) -> &str {
        &self.reach.organization_id
    }

    pub fn user_id(&self) -> &str {
        &self.record.credential.user_id
    }

    /// `access_key` or `personal_access_token`, the audit actor kind.
    pub fn actor_kind(&self) -> &'static str {
        if self.session {
            "session"
        } else {
            self.kind.as_str()
        }
    }

    /// Why this credential cannot be used at `now`, if it cannot.
    fn unusable(&self, now: i64) -> Option<&'static str> {
        let c = &self.record.credential;
        if c.revoked_at.is_some() {
            Some("revoked")
        } else if c.expires_at.is_some_and(|e| e <= now) {
            Some("expired")
        } else if self.kind == TokenKind::PersonalAccessToken && self.role.is_none() {
            Some("user_removed")
        } else {
            None
        }
    }
}

/// Recently seen credentials by token hash. Entries are dropped when this
/// node revokes or changes them, when another node announces it (PostgreSQL
/// `NOTIFY`), and in any case after [`CredentialCache::TTL`].
pub struct CredentialCache {
    cache: moka::sync::Cache<[u8; 32], Arc<Principal>>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialCache {
    pub const TTL: Duration = Duration::from_secs(60);
    pub const CAPACITY: u64 = 100_000;

    pub fn new() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(Self::CAPACITY)
                .time_to_live(Self::TTL)
                .build(),
        }
    }

    pub fn invalidate(&self, hash: &[u8]) {
        if let Ok(key) = <[u8; 32]>::try_from(hash) {
            self.cache.invalidate(&key);
        }
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

impl AppState {
    /// Drops a credential from every node's cache (this node at once).
    pub async fn forget_credential(&self, token_hash: &[u8]) {
        self.credentials().invalidate(token_hash);
        if let Err(err) = self
            .store()
            .announce_invalidation(&hex::encode(token_hash))
            .await
        {
            tracing::warn!(error = %err, "could not announce a credential invalidation");
        }
    }

    /// Drops every cached credential on every node (role and member changes).
    pub async fn forget_all_credentials(&self) {
        self.credentials().invalidate_all();
        if let Err(err) = self.store().announce_invalidation("*").await {
            tracing::warn!(error = %err, "could not announce a cache invalidation");
        }
    }

    /// Finds the credential behind a bearer token (401 when there is none
    /// usable) and notes its use.
    pub async fn authenticate(&self, bearer: &str) -> ApiResult<Arc<Principal>> {
        let parsed = token::parse(self.prefixes(), bearer)
            .map_err(|e| ApiError::Unauthorized(e.reason()))?;
        let principal = match self.credentials().cache.get(&parsed.hash.0) {
            Some(p) => p,
            None => {
                let record = self
                    .store()
                    .credential_by_hash(parsed.hash.as_bytes())
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))?
                    .ok_or(ApiError::Unauthorized("unknown"))?;
                let stored = TokenHash::from_slice(&record.credential.token_hash);
                if !stored.is_some_and(|h| h.ct_eq(&parsed.hash)) {
                    return Err(ApiError::Unauthorized("unknown"));
                }
                let principal = Arc::new(
                    Principal::from_record(record).ok_or(ApiError::Unauthorized("unknown"))?,
                );
                self.credentials()
                    .cache
                    .insert(parsed.hash.0, principal.clone());
                principal
            }
        };
        if principal.kind != parsed.kind {
            return Err(ApiError::Unauthorized("unknown"));
        }
        let now = now_ms();
        if let Some(reason) = principal.unusable(now) {
            return Err(ApiError::Unauthorized(reason));
        }
        self.usage().record(principal.id(), now);
        Ok(principal)
    }
}

/// The bearer token of a request, if it sent one.
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
        "apps" => pick(Scope::AppsRead, Scope::AppsWrite),
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

/// An authenticated management caller that holds the route's permission.
pub struct Auth(pub Arc<Principal>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str())
            .unwrap_or("");
        let Some(token) = bearer(parts)? else {
            // No bearer token: a dashboard session cookie (with its CSRF
            // header on writes) is the only other way in.
            let principal = crate::session::from_cookie(parts, state)
                .await?
                .ok_or(ApiError::Unauthorized("missing"))?;
            return authorize(principal, &parts.method, path).map(Auth);
        };
        if crate::connect_auth::looks_like_jwt(token)
            && token::parse(state.prefixes(), token).is_err()
        {
            state.authenticate_connect(token).await?;
            return Err(ApiError::forbidden(
                "credential",
                "connect tokens are accepted only by the /v1/connect/* routes",
            ));
        }
        let principal = state.authenticate(token).await?;
        authorize(principal, &parts.method, path).map(Auth)
    }
}

/// Applies a route's policy (SPEC §3) to an authenticated caller.
fn authorize(principal: Arc<Principal>, method: &Method, path: &str) -> ApiResult<Arc<Principal>> {
    let policy = route_policy(method, path);
    if policy.user_only && principal.kind == TokenKind::AccessKey {
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
