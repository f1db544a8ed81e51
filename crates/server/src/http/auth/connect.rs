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

use super::{bearer, refused};
use crate::{
    error::{ApiError, ApiResult},
    http::{extract::client_ip, middleware::cors::CorsOrigins},
    service::{
        authenticate,
        connect_tokens::AppCaller,
        limits::{self, Meter},
        principal::{app_reach, CallerKind, ConnectPrincipal},
    },
    state::AppState,
};

/// The app whose hostname a request was sent to; set on app-surface
/// requests by the host dispatcher.
#[derive(Debug, Clone)]
pub struct AppSurface(pub Arc<App>);

/// A request on a connect-token route, made with a valid connect token.
/// It is charged to the end user's `credential` and the app's
/// `environment`; without a valid credential, to its IP.
pub struct ConnectAuth(pub Arc<ConnectPrincipal>);

impl FromRequestParts<AppState> for ConnectAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let meter = Meter::current();
        match connect_caller(parts, state, &meter).await {
            Ok(principal) => {
                if let Some(CorsOrigins(slot)) = parts.extensions.get::<CorsOrigins>() {
                    let _ = slot.set(principal.claims.allowed_origins.clone());
                }
                Ok(ConnectAuth(principal))
            }
            Err(err) => Err(refused(state, parts, err).await),
        }
    }
}

async fn connect_caller(
    parts: &Parts,
    state: &AppState,
    meter: &Meter,
) -> ApiResult<Arc<ConnectPrincipal>> {
    let raw = bearer(parts)?.ok_or(ApiError::Unauthorized("missing"))?;
    if authenticate::is_key_or_pat(state, raw) {
        let principal = authenticate::credential(state, raw).await?;
        limits::caller(state, meter, &principal).await?;
        return Err(ApiError::forbidden(
            "credential",
            "this route takes a connect token, not an access key or personal access token",
        ));
    }
    // Anything else is a connect token or nothing: `connect_token` answers
    // one it verified recently from memory, and checks the shape of the
    // rest before their signature.
    let principal = authenticate::connect_token(state, raw).await?;
    limits::connect_caller(state, meter, &principal).await?;
    Ok(principal)
}

/// Access to an app-surface route: the app, and the access key used. Every
/// request is charged to the app's `environment`, and to the key's
/// `credential` or (without a valid one) the client's `ip`.
pub struct AppAccess(pub AppCaller);

impl FromRequestParts<AppState> for AppAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let app = parts
            .extensions
            .get::<AppSurface>()
            .map(|a| a.0.clone())
            .ok_or(ApiError::NotFound)?;
        let meter = Meter::current();
        match app_caller(parts, state, &meter, app).await {
            Ok(caller) => Ok(AppAccess(caller)),
            Err(err) => Err(refused(state, parts, err).await),
        }
    }
}

async fn app_caller(
    parts: &Parts,
    state: &AppState,
    meter: &Meter,
    app: Arc<App>,
) -> ApiResult<AppCaller> {
    let Some(raw) = bearer(parts)? else {
        if app.access_type != AccessType::Public {
            return Err(ApiError::Unauthorized("missing"));
        }
        let ip = client_ip(parts, state.config());
        limits::anonymous(state, meter, ip.as_deref()).await?;
        limits::app(state, meter, &app).await?;
        return Ok(AppCaller { app, key: None });
    };
    if !authenticate::is_key_or_pat(state, raw) {
        if authenticate::looks_like_jwt(raw) {
            let principal = authenticate::connect_token(state, raw).await?;
            limits::connect_caller(state, meter, &principal).await?;
            return Err(ApiError::forbidden(
                "credential",
                "a connect token cannot be used on an app hostname",
            ));
        }
        return Err(ApiError::Unauthorized("malformed"));
    }
    let principal = authenticate::credential(state, raw).await?;
    limits::caller(state, meter, &principal).await?;
    limits::app(state, meter, &app).await?;
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
    Ok(AppCaller {
        app,
        key: Some(principal),
    })
}
