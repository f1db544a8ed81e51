//! `GET /assets/{name}`: the hosted pages' scripts and stylesheets, embedded
//! in the binary (no CDN, no build step). The browser-security headers come
//! from [`crate::http::middleware::security`], like every page's.
//!
//! To add a file, put it in `crates/server/assets/` and add one line to
//! [`ASSETS`].

use axum::{
    extract::Path,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{error::ApiError, http::middleware::security::ASSET_CACHING, state::AppState};

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
            body: include_bytes!(concat!("../../../assets/", $name)),
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
    asset!("dashboard-audit.js", JS),
    asset!("dashboard-core.js", JS),
    asset!("dashboard-tokens.js", JS),
    asset!("dashboard-webhooks.js", JS),
    asset!("favicon.svg", SVG),
    asset!("oauth2-callback.js", JS),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/{name}", get(serve))
        .route("/favicon.ico", get(favicon))
        .route("/robots.txt", get(robots))
}

/// What `/robots.txt` says: the hosted page and the dashboard are never to
/// be indexed (SPEC §10); the pages say `noindex` as well.
const ROBOTS: &str = "User-agent: *\nDisallow: /\n";

/// `/favicon.ico`: the mark, as SVG (browsers take any image here).
async fn favicon() -> Response {
    serve(Path("favicon.svg".to_string())).await
}

/// `/robots.txt`: nothing here is for search engines.
async fn robots() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, ASSET_CACHING),
        ],
        ROBOTS,
    )
        .into_response()
}

/// An embedded file, or the 404 envelope.
#[tracing::instrument(level = "debug", skip_all)]
async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::NotFound.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, ASSET_CACHING),
        ],
        asset.body,
    )
        .into_response()
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
