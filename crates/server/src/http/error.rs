//! [`ApiError`] as an HTTP response: the status, and the SPEC §2 envelope
//! `{"error": {"code", "message", "details"?}}`. A 401 carries
//! `WWW-Authenticate: Bearer`; the reason behind a 401 and the error behind
//! a 500 ride along as response extensions, for the metric and the one log
//! line the request-context middleware writes.

use std::sync::Arc;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::error::{ApiError, Details};

/// The HTTP status of an error.
pub fn status(err: &ApiError) -> StatusCode {
    match err {
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::NotFound => StatusCode::NOT_FOUND,
        ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The SPEC §2 `message`: the status's reason phrase, nothing internal.
pub fn message(err: &ApiError) -> &'static str {
    match err {
        ApiError::HeaderTooLarge => "Request Header Fields Too Large",
        other => status(other).canonical_reason().unwrap_or("Error"),
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
}

/// The internal error behind a 500, attached to the response so the
/// request-context middleware can log it once, next to the request id.
#[derive(Clone)]
pub struct InternalFailure(pub Arc<anyhow::Error>);

/// The reason behind a 401, attached for the auth-failure metric.
#[derive(Clone, Copy)]
pub struct AuthFailure(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope {
            error: Body {
                code: self.code(),
                message: message(&self),
                details: self.details(),
            },
        };
        let mut response = (status(&self), Json(body)).into_response();
        match self {
            ApiError::Unauthorized(reason) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response.extensions_mut().insert(AuthFailure(reason));
            }
            ApiError::RateLimited { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Internal(err) => {
                response
                    .extensions_mut()
                    .insert(InternalFailure(Arc::new(err)));
            }
            _ => {}
        }
        response
    }
}
