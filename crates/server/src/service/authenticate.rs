//! Checking a bearer credential: an access key or PAT (checksum first,
//! without touching storage; then by the SHA-256 of the token, from the
//! cache when seen recently), or a connect token (signature and claims,
//! then the app and the revocations). Which credential a route accepts is
//! the HTTP extractors' decision; this module only says whether one is
//! valid, and who it is.

use std::sync::Arc;

use gatehouse_core::{
    time::now_ms,
    token::{self, TokenHash},
};

use super::{
    principal::{ConnectPrincipal, Principal},
    Services,
};
use crate::{
    crypto::{jwt::LEEWAY_SECS, tokens::sha256},
    error::{ApiError, ApiResult},
};

/// True for a string shaped like a compact JWS (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    // One pass over the bytes (a token is about a kilobyte): base64url
    // characters and exactly two dots, the first two parts non-empty.
    let bytes = token.as_bytes();
    let mut dots = [0usize; 2];
    let mut count = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if count == 2 {
                return false;
            }
            dots[count] = i;
            count += 1;
        } else if !BASE64URL[usize::from(b)] {
            return false;
        }
    }
    count == 2 && dots[0] > 0 && dots[1] > dots[0] + 1
}

/// Which bytes base64url uses.
static BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// True when `raw` has the shape and checksum of one of our access keys or
/// PATs (checked without storage).
pub fn is_key_or_pat(svc: &Services, raw: &str) -> bool {
    token::parse(svc.prefixes(), raw).is_ok()
}

/// The caller behind an access key or PAT (401 when there is none usable),
/// noting its use for `last_used_at`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn credential(svc: &Services, bearer: &str) -> ApiResult<Arc<Principal>> {
    let parsed =
        token::parse(svc.prefixes(), bearer).map_err(|e| ApiError::Unauthorized(e.reason()))?;
    let cache = svc.credential_cache();
    let principal = match cache.get(&parsed.hash.0) {
        Some(p) => p,
        None if cache.is_known_unknown(&parsed.hash.0) => {
            return Err(ApiError::Unauthorized("unknown"));
        }
        None => {
            let Some(record) = svc
                .store()
                .credential_by_hash(parsed.hash.as_bytes())
                .await?
            else {
                cache.insert_unknown(parsed.hash.0);
                return Err(ApiError::Unauthorized("unknown"));
            };
            let stored = TokenHash::from_slice(&record.credential.token_hash);
            if !stored.is_some_and(|h| h.ct_eq(&parsed.hash)) {
                return Err(ApiError::Unauthorized("unknown"));
            }
            let principal = Arc::new(Principal::from_credential(record));
            cache.insert(parsed.hash.0, principal.clone());
            principal
        }
    };
    if principal.kind != parsed.kind.into() {
        return Err(ApiError::Unauthorized("unknown"));
    }
    let now = now_ms();
    if let Some(reason) = principal.unusable(now) {
        return Err(ApiError::Unauthorized(reason));
    }
    svc.usage().record(&principal.id, now);
    Ok(principal)
}

/// Verifies a connect token: signature and claims, that its app still
/// exists in its environment, and that neither the token nor its user's
/// tokens were revoked. A token verified recently is answered from memory;
/// anything else not shaped like a JWT is 401 `malformed` before any
/// signature is checked.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn connect_token(svc: &Services, token: &str) -> ApiResult<Arc<ConnectPrincipal>> {
    let hash = sha256(token);
    let now = now_ms() / 1000;
    if let Some(p) = svc.connect_token_cache().get(&hash) {
        if p.claims.exp + LEEWAY_SECS as i64 > now {
            return Ok(p);
        }
        svc.connect_token_cache().invalidate(&hash);
        return Err(ApiError::Unauthorized("expired"));
    }
    // Only a token found in the cache skips this walk over its bytes: a
    // cached one passed it when it was verified.
    if !looks_like_jwt(token) {
        return Err(ApiError::Unauthorized("malformed"));
    }
    let claims = svc
        .signing()
        .verify_or_refresh(token, &svc.config().public_url, svc.store(), svc.keyring())
        .await
        .map_err(|e| ApiError::Unauthorized(e.reason()))?;
    let app = svc
        .store()
        .app(&claims.app_id)
        .await?
        .filter(|a| a.environment_id == claims.environment_id)
        .ok_or(ApiError::Unauthorized("app_gone"))?;
    if svc.store().connect_token_revoked(&claims.jti).await? {
        return Err(ApiError::Unauthorized("revoked"));
    }
    if let Some(key_id) = &claims.minted_by {
        // Revoking the key kills its tokens (an expiry after a rotation
        // does not): the key's revocation drops every cached token.
        let key = svc
            .store()
            .credential(gatehouse_core::TokenKind::AccessKey, key_id)
            .await?;
        if key.is_none_or(|k| k.credential.revoked_at.is_some()) {
            return Err(ApiError::Unauthorized("revoked"));
        }
    }
    if let Some(at) = svc
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
        limit_key: std::sync::OnceLock::new(),
        limit_slot: Default::default(),
        environment_limit_key: std::sync::OnceLock::new(),
        environment_limit_slot: Default::default(),
    });
    svc.connect_token_cache().insert(hash, principal.clone());
    Ok(principal)
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
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b.c+"));
        assert!(!looks_like_jwt(""));
    }
}
