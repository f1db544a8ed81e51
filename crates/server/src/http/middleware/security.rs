//! The browser-security headers of every hosted page and embedded asset,
//! as one layer: the strict Content-Security-Policy (scripts, styles and
//! API calls from this origin only, no inline code, no framing, no
//! plugins), `Referrer-Policy: no-referrer` (a connect URL holds a token),
//! `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff`, and
//! `Cache-Control: no-store` unless the route chose its own caching.

use axum::{
    http::{header, HeaderValue},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every hosted page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// [`CONTENT_SECURITY_POLICY`] with framing allowed for `origins` only
/// (canonical origins, as connect tokens carry them): the hosted page of a
/// token minted with `allowed_origins`, which the browser SDK's modal
/// frames. Browsers apply `frame-ancestors` over `X-Frame-Options`.
pub fn framable_by(origins: &[String]) -> Option<HeaderValue> {
    if origins.is_empty() {
        return None;
    }
    let policy = CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {}", origins.join(" ")),
    );
    HeaderValue::from_str(&policy).ok()
}

/// How long a browser may keep an embedded asset: public, for a few
/// minutes (they change on upgrade).
pub const ASSET_CACHING: HeaderValue = HeaderValue::from_static("public, max-age=300");

/// `routes` with the security headers on every response.
pub fn secure<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // A page may widen only `frame-ancestors` (the hosted page for a
        // token's allowed origins, see [`framable_by`]).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
}
