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
        .route("/sdk/connect.js", get(sdk))
}

/// The browser SDK (`sdk/js/connect.js`, also packaged for npm), served so
/// that platforms' pages on any origin can import it.
const SDK: &[u8] = include_bytes!("../../../../../sdk/js/connect.js");

/// How long a browser or CDN may keep the SDK: a day; its `ETag` (a
/// digest of the file) makes revalidation cheap after an upgrade.
const SDK_CACHING: header::HeaderValue = header::HeaderValue::from_static("public, max-age=86400");

fn sdk_etag() -> &'static header::HeaderValue {
    static ETAG: std::sync::OnceLock<header::HeaderValue> = std::sync::OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SDK);
        let hex = hex::encode(&digest.as_ref()[..16]);
        header::HeaderValue::from_str(&format!("\"{hex}\""))
            .unwrap_or(header::HeaderValue::from_static("\"sdk\""))
    })
}

/// `GET /sdk/connect.js`: the SDK as an ES module, importable from any
/// origin (`Access-Control-Allow-Origin: *`; it holds no secret), cached for
/// a day and revalidated by `ETag`.
async fn sdk(headers: axum::http::HeaderMap) -> Response {
    let etag = sdk_etag();
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii() == etag.as_bytes())
    });
    let common = [
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        ),
        (header::CACHE_CONTROL, SDK_CACHING),
        (header::ETAG, etag.clone()),
    ];
    if fresh {
        return (axum::http::StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, header::HeaderValue::from_static(JS))],
        SDK,
    )
        .into_response()
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

    /// `sdk/js/README.md` documents the SDK's Subresource Integrity value;
    /// it must be the digest of the file served.
    #[test]
    fn sdk_integrity_is_documented() {
        use base64::Engine;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, SDK);
        let sri = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        );
        let readme = include_str!("../../../../../sdk/js/README.md");
        assert!(
            readme.contains(&sri),
            "sdk/js/README.md must document the integrity value {sri}"
        );
    }

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
