//! The HTTP surface: one module per resource path, three routers chosen by
//! `Host` (SPEC §1), and the middleware every request passes through.

pub mod access_keys;
pub mod app_surface;
pub mod apps;
pub mod assets;
pub mod audit_events;
pub mod connect;
pub mod connect_page;
pub mod credentials;
pub mod dashboard;
pub mod end_users;
pub mod environments;
pub mod extract;
pub mod login;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod organization;
pub mod personal_access_tokens;
pub mod projects;
pub mod response;
pub mod surface;
pub mod tokens;
pub mod views;

use axum::{
    extract::{Request, State},
    middleware as mw,
    response::{IntoResponse, Response},
    Router,
};
use tower::ServiceExt;

use crate::state::AppState;
use surface::{AppSurface, Surface};

/// The three route sets and the state, for the host dispatcher.
#[derive(Clone)]
struct Surfaces {
    state: AppState,
    management: Router,
    app: Router,
    ops: Router,
}

fn finish(routes: Router<AppState>, state: &AppState) -> Router {
    routes
        .route_layer(mw::from_fn_with_state(
            state.clone(),
            middleware::body_guard,
        ))
        // After `route_layer`, so a wrong method is 405 before the body
        // guard's 413/415 (SPEC §2 order); axum still adds `Allow`.
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .fallback(middleware::not_found)
        .with_state(state.clone())
}

/// The whole application, ready for `axum::serve` or `oneshot`.
pub fn router(state: AppState) -> Router {
    let management = Router::new()
        .merge(ops::routes())
        .merge(ops::openapi_routes())
        .merge(tokens::routes())
        .merge(access_keys::routes())
        .merge(personal_access_tokens::routes())
        .merge(projects::routes())
        .merge(environments::routes())
        .merge(organization::routes())
        .merge(audit_events::routes())
        .merge(apps::routes())
        .merge(end_users::routes())
        .merge(connect::routes())
        .merge(connect_page::routes())
        .merge(assets::routes())
        .merge(login::routes())
        .merge(dashboard::routes());
    let app = Router::new()
        .merge(ops::routes())
        .merge(app_surface::routes());
    let surfaces = Surfaces {
        management: finish(management, &state),
        app: finish(app, &state),
        ops: finish(ops::routes(), &state),
        state: state.clone(),
    };
    Router::new()
        .fallback(dispatch)
        .with_state(surfaces)
        .layer(mw::from_fn_with_state(state, middleware::request_context))
}

/// Sends a request to the routes of its surface.
async fn dispatch(State(s): State<Surfaces>, mut req: Request) -> Response {
    let surface = match s.state.surface(req.headers(), req.uri()).await {
        Ok(surface) => surface,
        Err(err) => return err.into_response(),
    };
    let routes = match surface {
        Surface::Management => s.management,
        Surface::UnknownAppHost => s.ops,
        Surface::App(app) => {
            req.extensions_mut().insert(AppSurface(app));
            s.app
        }
    };
    match routes.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
