//! Request extractors that reject in the SPEC §2 envelope: JSON bodies,
//! query parameters and pagination, and where a request came from
//! ([`Origin`]: IP and user agent, for audit events).

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use gatehouse_core::validate::BLANK;
use gatehouse_store::PageRequest;

use gatehouse_core::forwarded;

use crate::{
    config::Config,
    error::{ApiError, ApiResult, FieldErrors},
    service::audit::Origin,
    state::AppState,
};

/// A JSON body. The body guard has already enforced the size limit and
/// the content type; this turns what serde says into field-level details.
/// An empty body is `{"input": "cannot be blank"}`.
pub struct ApiJson<T>(pub T);

/// A JSON body whose fields are all optional: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    // Every body is an object: serde would also read a struct from an
    // array of its fields in order (`["viewer"]` as `{"role": "viewer"}`).
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        let message = match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(e) => describe(&e),
            Ok(_) => "must be a JSON object".to_string(),
        };
        return Err(ApiError::field("input", message));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => {
            de.end()
                .map_err(|e| ApiError::field("input", describe(&e)))?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let field = if path == "." || path.is_empty() || inner.is_syntax() || inner.is_eof() {
                "input".to_string()
            } else {
                path
            };
            Err(ApiError::field(field, describe(&inner)))
        }
    }
}

/// serde_json's message without the "at line 1 column 9" suffix when the
/// field is already named, and with it for syntax errors.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if err.is_syntax() || err.is_eof() {
        return format!("invalid JSON: {text}");
    }
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

async fn body_bytes(req: Request) -> ApiResult<Bytes> {
    Bytes::from_request(req, &())
        .await
        .map_err(|_| ApiError::PayloadTooLarge)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<Self> {
        let bytes = body_bytes(req).await?;
        if is_blank(&bytes) {
            return Err(ApiError::field("input", BLANK));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<Self> {
        let bytes = body_bytes(req).await?;
        if is_blank(&bytes) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query-string parameters as strings, parsed by each handler into
/// validated values so every error names its parameter.
pub struct QueryMap(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let map = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        Ok(QueryMap(map))
    }
}

impl QueryMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A non-empty string parameter (an empty one, `?environment_id=`, is
    /// no filter at all).
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// `?page=&page_size=`: 1-based page (default 1), size 1–200 (default 50).
    /// Present but empty is not a number, so it is 400 like any other.
    pub fn page(&self) -> ApiResult<PageRequest> {
        let mut errors = FieldErrors::new();
        let page = errors.check(
            "page",
            parse_bounded(self.get("page"), 1, 1, u32::MAX / 1024),
        );
        let size = errors.check(
            "page_size",
            parse_bounded(self.get("page_size"), 50, 1, 200),
        );
        errors.finish()?;
        Ok(PageRequest {
            page: page.unwrap_or(1),
            size: size.unwrap_or(50),
        })
    }

    /// `?active=true|false` (present but empty is neither: 400).
    pub fn boolean(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::field(key, "must be true or false")),
        }
    }
}

fn parse_bounded(raw: Option<&str>, default: u32, min: u32, max: u32) -> Result<u32, String> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| format!("must be an integer from {min} to {max}")),
    }
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    /// The client's IP ([`client_ip`]) and the user agent (512 characters
    /// at most).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect());
        Ok(Origin {
            ip: client_ip(parts, state.config()),
            user_agent,
        })
    }
}

/// The client's IP: the peer's address, or with `trust_forwarded_headers`
/// the right-most `X-Forwarded-For` address that is not one of the
/// `trusted_proxies` (so what a client writes into the header itself is
/// never believed).
pub fn client_ip(parts: &Parts, config: &Config) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !config.trust_forwarded_headers {
        return Some(peer.to_string());
    }
    let chain = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    Some(forwarded::client_ip(peer, chain, &config.trusted_proxies).to_string())
}
