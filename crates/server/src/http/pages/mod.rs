//! The HTML side: the hosted connect page ([`connect`]), the dashboard and
//! its sign-in ([`dashboard`], [`login`]), the OAuth2 callback page
//! ([`oauth2_callback`]), and the embedded scripts and
//! styles they load ([`assets`]). Every response here carries the
//! browser-security headers of [`crate::http::middleware::security`].

pub mod assets;
pub mod connect;
pub mod dashboard;
pub mod login;
pub mod oauth2_callback;

use axum::Router;

use crate::{http::middleware::security, state::AppState};

/// Every page and asset route, with the security headers.
pub fn routes() -> Router<AppState> {
    security::secure(
        Router::new()
            .merge(connect::routes())
            .merge(assets::routes())
            .merge(login::routes())
            .merge(dashboard::routes())
            .merge(oauth2_callback::routes()),
    )
}
