//! The HTTP surface: JSON routes ([`api`]), pages ([`pages`]), the
//! extractors that authenticate ([`auth`]) and the middleware every request
//! passes through ([`middleware`]). Three route sets are chosen by `Host`
//! (SPEC §1): the management surface, an app's own hostname, and the ops
//! routes alone for an unknown host under `apps_domain`.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod response;
pub mod server;
pub mod views;

use axum::{
    extract::{FromRef, Request, State},
    http::header,
    middleware as mw,
    response::{IntoResponse, Response},
    Extension, Router,
};
use tower::ServiceExt;
use utoipa::OpenApi;

use crate::{
    service::{
        hosts::{self, Surface},
        Services,
    },
    state::AppState,
};
use api::ops::OpenApiJson;
use auth::AppSurface;

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Services {
        state.services().clone()
    }
}

/// The three route sets, for the host dispatcher.
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
            middleware::body::body_guard,
        ))
        // Outside the body guard: a 413 or 415 is decided before anything
        // is counted; every later answer carries the rate-limit headers.
        .route_layer(mw::from_fn_with_state(
            state.clone(),
            middleware::rate_limit::rate_limit_headers,
        ))
        // After `route_layer`, so a wrong method is 405 before the body
        // guard's 413/415 (SPEC §2 order); axum still adds `Allow`.
        .method_not_allowed_fallback(middleware::body::method_not_allowed)
        .fallback(middleware::body::not_found)
        .with_state(state.clone())
}

/// The whole OpenAPI document: the management and app-surface routes.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api::management_routes().split_for_parts();
    let (_, app) = api::app_routes().split_for_parts();
    doc.merge(app);
    let mut full = openapi::ApiDoc::openapi();
    full.merge(doc);
    openapi::optional_bodies_not_null(&mut full);
    openapi::unique_operation_ids(&mut full);
    full
}

/// The whole application, ready for `axum::serve` or `oneshot`.
pub fn router(state: AppState) -> Router {
    let document = serde_json::to_string(&openapi_document()).unwrap_or_else(|_| "{}".into());
    let (management, _) = api::management_routes().split_for_parts();
    let management = management
        .merge(pages::routes())
        .layer(Extension(OpenApiJson(document.into())));
    let (app, _) = api::app_routes().split_for_parts();
    let (ops, _) = api::ops::routes().split_for_parts();
    let surfaces = Surfaces {
        management: finish(management, &state),
        app: finish(app, &state),
        ops: finish(ops, &state),
        state: state.clone(),
    };
    let request_timeout = std::time::Duration::from_secs(state.config().request_timeout_seconds);
    Router::new()
        .fallback(dispatch)
        .with_state(surfaces)
        // Inside the request context, which gives its 408 the envelope.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(mw::from_fn_with_state(
            state,
            middleware::context::request_context,
        ))
}

/// Sends a request to the routes of its surface.
async fn dispatch(State(s): State<Surfaces>, mut req: Request) -> Response {
    let host = request_host(&req, s.state.config());
    let surface = match hosts::surface(s.state.services(), host.as_deref()).await {
        Ok(surface) => surface,
        Err(err) => return err.into_response(),
    };
    let routes = match surface {
        Surface::Management => {
            if let Some(answer) = middleware::cors::connect_preflight(&req) {
                return answer;
            }
            s.management
        }
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

/// The request's host, before normalisation: with `trust_forwarded_headers`
/// and a trusted peer, `X-Forwarded-Host` (its right-most value, the one
/// the nearest proxy set), else `Host`, else the URI's.
fn request_host(req: &Request, config: &crate::config::Config) -> Option<String> {
    let headers = req.headers();
    let peer_trusted = || {
        req.extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| {
                gatehouse_core::forwarded::peer_is_trusted(c.0.ip(), &config.trusted_proxies)
            })
    };
    let forwarded = (config.trust_forwarded_headers && peer_trusted())
        .then(|| headers.get_all("x-forwarded-host").iter().next_back())
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .or_else(|| req.uri().host())
        .map(str::to_string)
}
