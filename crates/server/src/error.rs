//! The one error type of the HTTP API. Every failure, including the
//! framework's own rejections, renders the SPEC §2 envelope:
//! `{"error": {"code", "message", "details"?}}`.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_store::StoreError;
use serde::Serialize;

/// Field (dotted path) → what is wrong with it.
pub type Details = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request")]
    BadRequest(Details),
    /// Why authentication failed, for the `auth_failures_total` metric.
    #[error("unauthorized ({0})")]
    Unauthorized(&'static str),
    #[error("forbidden")]
    Forbidden(Details),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict")]
    Conflict(Details),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("request header fields too large")]
    HeaderTooLarge,
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with one field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest(BTreeMap::from([(field.into(), message.into())]))
    }

    /// A 403 explaining which permission is missing.
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Forbidden(BTreeMap::from([(field.into(), message.into())]))
    }

    /// A 409 naming the clashing field.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Conflict(BTreeMap::from([(field.into(), message.into())]))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The SPEC §2 `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::HeaderTooLarge => "header_too_large",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The SPEC §2 `message`: the status's reason phrase, nothing internal.
    pub fn message(&self) -> &'static str {
        match self {
            ApiError::HeaderTooLarge => "Request Header Fields Too Large",
            other => other.status().canonical_reason().unwrap_or("Error"),
        }
    }

    fn details(&self) -> Option<&Details> {
        match self {
            ApiError::BadRequest(d) | ApiError::Forbidden(d) | ApiError::Conflict(d)
                if !d.is_empty() =>
            {
                Some(d)
            }
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { field } => ApiError::conflict(field, "is already taken"),
            other => ApiError::Internal(other.into()),
        }
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
/// request-id middleware can log it once, next to the request id.
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
                message: self.message(),
                details: self.details(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        match self {
            ApiError::Unauthorized(reason) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response.extensions_mut().insert(AuthFailure(reason));
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

pub type ApiResult<T> = Result<T, ApiError>;

/// Collects field errors, so one 400 names every bad field at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Details);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `field`, returning the value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(msg) => {
                self.0.entry(field.to_string()).or_insert(msg);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    /// `Err(400)` when any field failed.
    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::BadRequest(self.0))
        }
    }
}
