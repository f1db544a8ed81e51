//! The one error type of the API, shared by the use cases and the HTTP
//! layer. It knows what went wrong in API terms (the SPEC §2 `code` and
//! the field details); `http::error` turns it into a response.

use std::collections::BTreeMap;

use gatehouse_core::{members::MemberRuleError, reach::ReachError, scope::GrantError};
use gatehouse_store::StoreError;

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
    /// The request took longer than `request_timeout_seconds`.
    #[error("request timeout")]
    RequestTimeout,
    /// A rate limit (SPEC §8) is used up: retry after this many seconds.
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
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

    /// An internal error from anything displayable (a 500 that is logged).
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
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
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The field details, when there are any.
    pub fn details(&self) -> Option<&Details> {
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
            // A NUL character in an id, a query parameter or a field.
            ref refused if refused.is_refused_text() => {
                ApiError::field("input", "must not contain NUL characters")
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<ReachError> for ApiError {
    fn from(err: ReachError) -> Self {
        ApiError::forbidden(err.field(), err.to_string())
    }
}

impl From<MemberRuleError> for ApiError {
    /// Rules about the caller are 403 on `role`; the last-owner rule is a
    /// 400 on `role` (the caller may fix the request).
    fn from(err: MemberRuleError) -> Self {
        if err.is_forbidden() {
            ApiError::forbidden("role", err.to_string())
        } else {
            ApiError::field("role", err.to_string())
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(err: GrantError) -> Self {
        match err {
            GrantError::Exceeds(_) => ApiError::forbidden("scopes", err.to_string()),
            _ => ApiError::field("scopes", err.to_string()),
        }
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
                self.add(field, msg);
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
