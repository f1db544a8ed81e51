//! The outermost layer: the request id, the header limit, the envelope for
//! framework responses (405, and 408 from the request timeout), metrics,
//! and the single place where 500s are logged.

use std::time::Instant;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use gatehouse_core::{new_id, IdKind};
use tracing::Instrument;

use super::RouteLabel;
use crate::{
    error::ApiError,
    http::error::{AuthFailure, InternalFailure},
    state::AppState,
};

/// The request id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Outermost layer: assigns the request id, enforces the header limit,
/// gives framework responses (405) the error envelope, records metrics,
/// and logs internal errors once with the request id.
pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| new_id(IdKind::Request));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = method_label(req.method());
    let has_body = declares_body(req.headers());

    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.as_bytes().len() + 4)
        .sum();
    let span = tracing::info_span!("request", request_id = %request_id, method = method);
    let mut response = if header_bytes > state.config().max_header_bytes {
        ApiError::HeaderTooLarge.into_response()
    } else {
        next.run(req).instrument(span.clone()).await
    };

    if response.status() == StatusCode::BAD_REQUEST && is_plain_text(&response) {
        // A framework rejection of the path (e.g. invalid UTF-8 in an id):
        // its short message, in the envelope.
        response = path_rejection(response).await;
    }
    if response.status() == StatusCode::REQUEST_TIMEOUT && !is_json(&response) {
        // The body may be half read: the connection cannot be reused.
        response = ApiError::RequestTimeout.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && !is_json(&response) {
        let allow = response.headers().get(header::ALLOW).cloned();
        response = ApiError::MethodNotAllowed.into_response();
        if let Some(allow) = allow {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }

    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone());
    // No route label: the body guard never ran (404, 405, 431), so a body
    // the client sent is still unread and the connection cannot be reused.
    if has_body && route.is_none() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    let status = response.status();
    if let Some(InternalFailure(err)) = response.extensions().get::<InternalFailure>() {
        span.in_scope(
            || tracing::error!(route = %route, error = %format!("{err:#}"), "request failed"),
        );
    }
    if let Some(AuthFailure(reason)) = response.extensions().get::<AuthFailure>() {
        metrics::counter!("gatehouse_auth_failures_total", "reason" => *reason).increment(1);
    }
    metrics::counter!(
        "gatehouse_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status_class(status)
    )
    .increment(1);
    metrics::histogram!("gatehouse_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());

    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The method as a metric label: one of the standard methods, or `other`
/// (an extension method is whatever the client sent, of any length).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// `2xx`, `4xx`…: the status as a metric label.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// True when the request announces a body (`Content-Length` above 0, or
/// any `Transfer-Encoding`).
fn declares_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn is_plain_text(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"))
}

/// A plain-text 400 from axum's path extractor as the SPEC §2 envelope,
/// `{"path": "<what is wrong>"}`.
async fn path_rejection(response: Response) -> Response {
    let text = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let reason = text.strip_prefix("Invalid URL: ").unwrap_or(&text).trim();
    let reason = if reason.is_empty() {
        "is not valid"
    } else {
        reason
    };
    ApiError::field("path", reason.chars().take(200).collect::<String>()).into_response()
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client request ids are kept only when they match SPEC §2's pattern.
    #[test]
    fn request_id_pattern() {
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"a".repeat(129)));
    }
}
