//! CORS for the connect-token routes (SPEC §11), so that a platform's own
//! frontend can call them with a connect token minted with
//! `allowed_origins`. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered for any origin, without
//! credentials: it grants nothing by itself. An actual response carries
//! `Access-Control-Allow-Origin` only when the request's `Origin` is one of
//! the presented token's `allowed_origins`, which [`ConnectAuth`] records
//! in the request's [`CorsOrigins`] slot once the token is verified; a
//! refused token gets none. Credentials (cookies) are never allowed, and
//! no other route answers CORS.
//!
//! [`ConnectAuth`]: crate::http::auth::ConnectAuth

use std::sync::{Arc, OnceLock};

use axum::{
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Where the connect-token extractor leaves the verified token's
/// `allowed_origins`.
#[derive(Clone, Default)]
pub struct CorsOrigins(pub Arc<OnceLock<Vec<String>>>);

/// How long a browser may reuse a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// What the connect-token routes take from a browser.
const METHODS: &str = "GET, POST, DELETE";
const HEADERS: &str = "authorization, content-type";
/// Response headers a page may read besides the simple ones.
const EXPOSED: &str = "ratelimit, ratelimit-policy, retry-after";

/// The answer to `req` when it is a CORS preflight for a connect-token
/// route (`/v1/connect/…` on the management surface, but not the OAuth2
/// callback, which browsers reach by navigation). Called by the host
/// dispatcher, since routes have no `OPTIONS` handler of their own.
pub fn connect_preflight(req: &Request) -> Option<Response> {
    let path = req.uri().path();
    let connect_route = path.starts_with("/v1/connect/") && path != "/v1/connect/oauth2/callback";
    if !connect_route
        || req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    req.headers().get(header::ORIGIN).cloned().map(preflight)
}

/// Actual responses of the connect-token routes: `Access-Control-Allow-Origin`
/// for the token's own origins.
pub async fn connect_cors(mut req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let slot = CorsOrigins::default();
    if origin.is_some() {
        req.extensions_mut().insert(slot.clone());
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    // The answer depends on `Origin`, whether or not this request had one.
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    let allowed = origin.filter(|origin| {
        slot.0
            .get()
            .is_some_and(|list| list.iter().any(|o| o.as_bytes() == origin.as_bytes()))
    });
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    response
}

fn preflight(origin: HeaderValue) -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(HEADERS),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            ),
            (header::VARY, HeaderValue::from_static("origin")),
        ],
    )
        .into_response()
}
