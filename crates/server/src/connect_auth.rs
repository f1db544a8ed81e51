//! Authentication on the connect side (SPEC §6).
//!
//! - [`ConnectAuth`]: the connect-token routes (`/v1/connect/*` on the
//!   management surface) take only a connect token; a valid access key or
//!   PAT there is 403, anything invalid 401.
//! - [`AppAccess`]: app-surface routes. A private app needs an access key
//!   with `connect:write` that reaches the app's environment; a public app
//!   needs nothing, but a credential sent anyway is checked.
//!
//! Verified connect tokens are cached by the SHA-256 of the token (bounded,
//! never past `exp`), and dropped when their user's tokens are revoked,
//! their app is deleted or the token revokes itself.

use std::{sync::Arc, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
use gatehouse_core::{time::now_ms, token, Reach, Scope, TokenKind};
use gatehouse_store::apps::App;
use sha2::{Digest, Sha256};

use crate::{
    auth::{bearer, Principal},
    error::{ApiError, ApiResult},
    http::{apps::app_reach, surface::app_of},
    signing::ConnectClaims,
    state::AppState,
};

/// Accepted clock skew for `exp` and `nbf` (seconds).
pub const LEEWAY_SECONDS: i64 = 60;

/// A verified connect token and the app it is for.
#[derive(Debug)]
pub struct ConnectPrincipal {
    pub claims: ConnectClaims,
    pub app: Arc<App>,
    /// SHA-256 of the token, its cache key.
    pub token_hash: [u8; 32],
}

impl ConnectPrincipal {
    /// The audit actor id: the end user within the app.
    pub fn actor_id(&self) -> String {
        format!("{}:{}", self.app.id, self.claims.user_id)
    }

    pub fn reach(&self) -> Reach {
        app_reach(&self.app)
    }
}

/// Recently verified connect tokens.
pub struct ConnectCache {
    cache: moka::sync::Cache<[u8; 32], Arc<ConnectPrincipal>>,
}

impl Default for ConnectCache {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .support_invalidation_closures()
                .build(),
        }
    }
}

impl ConnectCache {
    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.cache.invalidate(hash);
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// Drops every cached token of one end user.
    pub fn invalidate_user(&self, environment_id: &str, user_id: &str) {
        let (env, user) = (environment_id.to_string(), user_id.to_string());
        let _ = self.cache.invalidate_entries_if(move |_, p| {
            p.claims.environment_id == env && p.claims.user_id == user
        });
    }
}

/// True for a string shaped like a compact JWS (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl AppState {
    /// Verifies a connect token (signature, claims, app, revocations).
    pub async fn authenticate_connect(&self, token: &str) -> ApiResult<Arc<ConnectPrincipal>> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_ms() / 1000;
        if let Some(p) = self.connect_cache().cache.get(&hash) {
            if p.claims.exp + LEEWAY_SECONDS > now {
                return Ok(p);
            }
            self.connect_cache().invalidate(&hash);
            return Err(ApiError::Unauthorized("expired"));
        }
        let claims = self
            .signing()
            .verify_or_refresh(
                token,
                &self.config().public_url,
                self.store(),
                self.keyring(),
            )
            .await
            .map_err(|e| ApiError::Unauthorized(e.reason()))?;
        let app = self
            .store()
            .app(&claims.app_id)
            .await?
            .filter(|a| a.environment_id == claims.environment_id)
            .ok_or(ApiError::Unauthorized("app_gone"))?;
        if self.store().connect_token_revoked(&claims.jti).await? {
            return Err(ApiError::Unauthorized("revoked"));
        }
        if let Some(at) = self
            .store()
            .end_user_revoked_at(&claims.environment_id, &claims.user_id)
            .await?
        {
            if claims.iat <= at {
                return Err(ApiError::Unauthorized("revoked"));
            }
        }
        let principal = Arc::new(ConnectPrincipal {
            claims,
            app: Arc::new(app),
            token_hash: hash,
        });
        self.connect_cache().cache.insert(hash, principal.clone());
        Ok(principal)
    }

    /// Drops cached connect tokens here and on every other node.
    pub async fn forget_connect_tokens(&self, environment_id: &str, user_id: &str) {
        self.connect_cache()
            .invalidate_user(environment_id, user_id);
        if let Err(err) = self.store().announce_invalidation("connect").await {
            tracing::warn!(error = %err, "could not announce a connect-token revocation");
        }
    }
}

/// A request on a connect-token route, made with a valid connect token.
pub struct ConnectAuth(pub Arc<ConnectPrincipal>);

impl FromRequestParts<AppState> for ConnectAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let raw = bearer(parts)?.ok_or(ApiError::Unauthorized("missing"))?;
        if token::parse(state.prefixes(), raw).is_ok() {
            state.authenticate(raw).await?;
            return Err(ApiError::forbidden(
                "credential",
                "this route takes a connect token, not an access key or personal access token",
            ));
        }
        if !looks_like_jwt(raw) {
            return Err(ApiError::Unauthorized("malformed"));
        }
        Ok(ConnectAuth(state.authenticate_connect(raw).await?))
    }
}

/// Access to an app-surface route: the app, and the access key used (none
/// on a public app called anonymously).
pub struct AppAccess {
    pub app: Arc<App>,
    pub key: Option<Arc<Principal>>,
}

impl FromRequestParts<AppState> for AppAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let app = app_of(parts).ok_or(ApiError::NotFound)?;
        let Some(raw) = bearer(parts)? else {
            return if app.access_type == gatehouse_core::AccessType::Public {
                Ok(AppAccess { app, key: None })
            } else {
                Err(ApiError::Unauthorized("missing"))
            };
        };
        if token::parse(state.prefixes(), raw).is_err() {
            if looks_like_jwt(raw) {
                state.authenticate_connect(raw).await?;
                return Err(ApiError::forbidden(
                    "credential",
                    "a connect token cannot be used on an app hostname",
                ));
            }
            return Err(ApiError::Unauthorized("malformed"));
        }
        let principal = state.authenticate(raw).await?;
        if principal.kind == TokenKind::PersonalAccessToken {
            return Err(ApiError::forbidden(
                "credential",
                "personal access tokens cannot be used on an app hostname; use an access key",
            ));
        }
        if !principal.reach.covers(&app_reach(&app)) {
            return Err(ApiError::forbidden(
                "credential",
                "this access key is for another project or environment",
            ));
        }
        if !principal.scopes.contains(Scope::ConnectWrite) {
            return Err(ApiError::forbidden(
                "scope",
                "requires the connect:write scope",
            ));
        }
        Ok(AppAccess {
            app,
            key: Some(principal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only three-part base64url strings are treated as JWTs.
    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("dyn_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c d"));
    }
}
