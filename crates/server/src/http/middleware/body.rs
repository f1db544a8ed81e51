//! On matched routes only (after 404/405): the body limit (413) and the
//! content type (415), before any credential is looked at (SPEC §2 order);
//! and the envelopes of unknown routes and methods.

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, HeaderValue, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::RouteLabel;
use crate::{error::ApiError, state::AppState};

/// True for `application/json`, with or without parameters
/// (`application/json; charset=utf-8`).
fn is_json_content_type(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The browser form posts (sign-in and sign-out), which take
/// `application/x-www-form-urlencoded`; every other route takes JSON.
const FORM_ROUTES: &[&str] = &["/login", "/logout"];

fn is_form_content_type(value: Option<&HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Runs on matched routes only (after 404/405): the body limit (413) and
/// the content type (415), before any credential is looked at. The body is
/// buffered here, within the limit, so later extractors never see more.
pub async fn body_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let mut response = guard(&state, req, next).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

async fn guard(state: &AppState, req: Request, next: Next) -> Response {
    let limit = state.config().max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return payload_too_large_and_close();
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && declared.unwrap_or(0) == 0
    {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return payload_too_large_and_close(),
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    let form_route = parts
        .extensions
        .get::<MatchedPath>()
        .is_some_and(|m| FORM_ROUTES.contains(&m.as_str()));
    let accepted =
        is_json_content_type(content_type) || (form_route && is_form_content_type(content_type));
    if !bytes.is_empty() && !accepted {
        return ApiError::UnsupportedMediaType.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Unknown routes: 404 in the envelope.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A known path with a method it does not serve: 405 in the envelope
/// (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A 413 sent without reading the whole body: the connection cannot be
/// reused, so say so (RFC 9112 §9.6), or a keep-alive client would send
/// its next request into a connection the server is closing.
fn payload_too_large_and_close() -> Response {
    let mut response = ApiError::PayloadTooLarge.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON with parameters is JSON; anything else is not.
    #[test]
    fn json_content_types() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(is_json_content_type(Some(&v("application/json"))));
        assert!(is_json_content_type(Some(&v(
            "application/json; charset=utf-8"
        ))));
        assert!(is_json_content_type(Some(&v("Application/JSON"))));
        assert!(!is_json_content_type(Some(&v("text/plain"))));
        assert!(!is_json_content_type(None));
    }
}
