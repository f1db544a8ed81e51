//! The HTTP surface: one module per resource path, assembled here with the
//! middleware every request passes through.

pub mod access_keys;
pub mod audit_events;
pub mod credentials;
pub mod environments;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod organization;
pub mod personal_access_tokens;
pub mod projects;
pub mod response;
pub mod tokens;
pub mod views;

use axum::{middleware as mw, Router};

use crate::state::AppState;

/// The whole application, ready for `axum::serve` or `oneshot`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(tokens::routes())
        .merge(access_keys::routes())
        .merge(personal_access_tokens::routes())
        .merge(projects::routes())
        .merge(environments::routes())
        .merge(organization::routes())
        .merge(audit_events::routes())
        .route_layer(mw::from_fn_with_state(
            state.clone(),
            middleware::body_guard,
        ))
        .fallback(middleware::not_found)
        .layer(mw::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}
