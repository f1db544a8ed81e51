//! Callers on the connect side (SPEC §6).
//!
//! - [`ConnectAuth`]: the connect-token routes (`/v1/connect/*` on the
//!   management surface) take only a connect token; a valid access key or
//!   PAT there is 403, anything invalid 401.
//! - [`AppAccess`]: app-surface routes. A private app needs an access key
//!   with `connect:write` that reaches the app's environment; a public app
//!   needs nothing, but a credential sent anyway is checked.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use gatehouse_core::{AccessType, Scope};
use gatehouse_store::apps::App;

use super::bearer;
use crate::{
    error::{ApiError, ApiResult},
    service::{
        authenticate,
        connect_tokens::AppCaller,
        principal::{app_reach, CallerKind, ConnectPrincipal},
    },
    state::AppState,
};

/// The app whose hostname a request was sent to; set on app-surface
/// requests by the host dispatcher.
#[derive(Debug, Clone)]
pub struct AppSurface(pub Arc<App>);

/// A request on a connect-token route, made with a valid connect token.
pub struct ConnectAuth(pub Arc<ConnectPrincipal>);

impl FromRequestParts<AppState> for ConnectAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let raw = bearer(parts)?.ok_or(ApiError::Unauthorized("missing"))?;
        if authenticate::is_key_or_pat(state, raw) {
            authenticate::credential(state, raw).await?;
            return Err(ApiError::forbidden(
                "credential",
                "this route takes a connect token, not an access key or personal access token",
            ));
        }
        if !authenticate::looks_like_jwt(raw) {
            return Err(ApiError::Unauthorized("malformed"));
        }
        Ok(ConnectAuth(authenticate::connect_token(state, raw).await?))
    }
}

/// Access to an app-surface route: the app, and the access key used.
pub struct AppAccess(pub AppCaller);

impl FromRequestParts<AppState> for AppAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let app = parts
            .extensions
            .get::<AppSurface>()
            .map(|a| a.0.clone())
            .ok_or(ApiError::NotFound)?;
        let Some(raw) = bearer(parts)? else {
            return if app.access_type == AccessType::Public {
                Ok(AppAccess(AppCaller { app, key: None }))
            } else {
                Err(ApiError::Unauthorized("missing"))
            };
        };
        if !authenticate::is_key_or_pat(state, raw) {
            if authenticate::looks_like_jwt(raw) {
                authenticate::connect_token(state, raw).await?;
                return Err(ApiError::forbidden(
                    "credential",
                    "a connect token cannot be used on an app hostname",
                ));
            }
            return Err(ApiError::Unauthorized("malformed"));
        }
        let principal = authenticate::credential(state, raw).await?;
        if principal.kind == CallerKind::PersonalAccessToken {
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
        Ok(AppAccess(AppCaller {
            app,
            key: Some(principal),
        }))
    }
}
