//! Everything of connect (SPEC §6) in one folder: the app-surface routes a
//! platform's backend calls on the app's hostname ([`tokens`]:
//! `POST /v1/connect/tokens`, `GET /v1/requirements/status`), and the
//! connect-token routes an end user's page calls on the management
//! surface ([`session`], [`requirements`]: `/v1/connect/*`).

pub mod requirements;
pub mod session;
pub mod tokens;

use utoipa_axum::router::OpenApiRouter;

use crate::{http::middleware::cors, state::AppState};

/// The connect-token routes (management surface), with their CORS.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(session::routes())
        .merge(requirements::routes())
        .layer(axum::middleware::from_fn(cors::connect_cors))
}

/// The app-surface routes.
pub fn app_routes() -> OpenApiRouter<AppState> {
    tokens::routes()
}
