//! `GET /assets/{name}`: the hosted pages' scripts and stylesheets, embedded
//! in the binary (no CDN, no build step), and the browser-security headers
//! every HTML page and asset carries ([`page_headers`]).
//!
//! To add a file, put it in `crates/server/assets/` and add one line to
//! [`ASSETS`].

use axum::{
    extract::Path,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{error::ApiError, state::AppState};

/// The Content-Security-Policy of every hosted page: scripts, styles and
/// API calls from this origin only, no inline code, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// How long a browser may keep a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Pages: they can carry per-user state, never stored.
    NoStore,
    /// Embedded assets: public, for a few minutes (they change on upgrade).
    ShortPublic,
}

/// Sets the security headers of a browser-facing response: the strict CSP,
/// `Referrer-Policy: no-referrer` (a connect URL holds a token),
/// `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, and
/// `Cache-Control` per `caching`. Shared by the connect page, the assets and
/// the dashboard.
pub fn page_headers(headers: &mut HeaderMap, caching: Caching) {
    let cache = match caching {
        Caching::NoStore => "no-store",
        Caching::ShortPublic => "public, max-age=300",
    };
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ] {
        headers.insert(name, value);
    }
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/", $name)),
        }
    };
}

/// Every file served under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("base.css", CSS),
    asset!("common.js", JS),
    asset!("connect.css", CSS),
    asset!("connect.js", JS),
    asset!("connect-cards.js", JS),
    asset!("connect-forms.js", JS),
    asset!("connect-session.js", JS),
    asset!("dashboard.css", CSS),
    asset!("dashboard.js", JS),
    asset!("dashboard-apps.js", JS),
    asset!("dashboard-core.js", JS),
    asset!("dashboard-tokens.js", JS),
    asset!("favicon.svg", SVG),
];

pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

/// An embedded file, or the 404 envelope.
async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        let mut response = ApiError::NotFound.into_response();
        page_headers(response.headers_mut(), Caching::NoStore);
        return response;
    };
    let mut response = ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response();
    page_headers(response.headers_mut(), Caching::ShortPublic);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset has a distinct name, a body and a charset where it is text.
    #[test]
    fn table_is_sound() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS[..i].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
            if a.content_type.starts_with("text/") {
                assert!(
                    std::str::from_utf8(a.body).is_ok(),
                    "{} is not UTF-8",
                    a.name
                );
            }
        }
    }
}
