//! Cross-cutting request handling: [`context`] (request ids, header limit,
//! metrics, logging of 500s), [`body`] (body limit and content type, in the
//! SPEC §2 order), [`rate_limit`] (the rate-limit headers of every limited
//! route), [`security`] (the browser-security headers of every page and
//! asset) and [`cors`] (the connect-token routes' CORS).

pub mod body;
pub mod context;
pub mod cors;
pub mod rate_limit;
pub mod security;

/// The route a request matched, copied onto its response for metrics.
#[derive(Clone)]
pub(crate) struct RouteLabel(pub(crate) String);
