//! The rate-limit headers (SPEC §8, IETF httpapi ratelimit-headers
//! draft-11). Every limited request gets a [`Meter`]; the extractors and
//! handlers charge their policies to it ([`crate::service::limits`]), and
//! on the way out this layer writes, on whatever the response is (200,
//! 401, 429…):
//!
//! - `RateLimit-Policy: "credential";q=1500;w=60, "environment";q=3000;w=60`
//!   (each policy that applied),
//! - `RateLimit: "credential";r=1499;t=1` (the one closest to running out:
//!   fewest requests left),
//! - and on a refusal `Retry-After` (whole seconds, rounded up).
//!
//! Limited routes are the API (`/v1/…`, the OAuth2 callback included) and
//! `POST /login`; ops routes, JWKS, pages and assets are not.

use std::{
    io::{Cursor, Write as _},
    sync::RwLock,
};

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};

use crate::{
    config::limits::Rule,
    service::limits::{Charge, Meter, Policy},
    state::AppState,
};

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Whether requests to `route` (a matched path template) are limited.
pub fn is_limited(method: &Method, route: &str) -> bool {
    route.starts_with("/v1/") || (route == "/login" && *method == Method::POST)
}

/// Gives each limited request a meter and writes its headers.
pub async fn rate_limit_headers(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limited = state.limits().enabled()
        && req
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|route| is_limited(req.method(), route.as_str()));
    if !limited {
        return next.run(req).await;
    }
    Meter::scope(next.run(req), |response, charges| {
        write_headers(charges, response.headers_mut())
    })
    .await
}

/// Writes the headers of `charges` (nothing when no policy applied, as
/// for a 413 decided before anything was counted).
pub fn write_headers(charges: &[Charge], headers: &mut HeaderMap) {
    // One entry per policy name: when a policy was charged for two keys,
    // the one with less left speaks for it. (Five policies at most, so no
    // allocation: this runs on every limited request.)
    let mut shown: [Option<&Charge>; 5] = [None; 5];
    let mut count = 0;
    for charge in charges {
        let seen = shown[..count]
            .iter_mut()
            .flatten()
            .find(|c| c.policy == charge.policy);
        match seen {
            Some(seen) if charge.remaining < seen.remaining => *seen = charge,
            Some(_) => {}
            None if count < 5 => {
                shown[count] = Some(charge);
                count += 1;
            }
            None => {}
        }
    }
    let shown = shown[..count].iter().flatten();
    let Some(closest) = shown
        .clone()
        .min_by_key(|c| (c.remaining, u64::MAX - c.reset_seconds))
    else {
        return;
    };
    // Written on the stack and copied once into each header value
    // (integers with itoa: `write!` cost more than the rest of the limiter
    // on this path). Five policies of the longest name and largest numbers
    // fit in 256 bytes, so the writes cannot fail.
    let mut buf = [0u8; 256];
    let rules = PolicyRules::of(shown.clone());
    if let Some(value) = rules.known() {
        headers.insert(RATELIMIT_POLICY, value);
    } else {
        let mut out = Cursor::new(&mut buf[..]);
        let written = shown.enumerate().try_for_each(|(i, c)| {
            if i > 0 {
                out.write_all(b", ")?;
            }
            write_item(
                &mut out,
                c.policy.name(),
                ("q", c.rule.limit.into()),
                ("w", c.rule.window_seconds.into()),
            )
        });
        if let Some(value) = written_value(written, out) {
            rules.keep(&value);
            headers.insert(RATELIMIT_POLICY, value);
        }
    }
    let mut out = Cursor::new(&mut buf[..]);
    let written = write_item(
        &mut out,
        closest.policy.name(),
        ("r", closest.remaining.into()),
        ("t", closest.reset_seconds),
    );
    if let Some(value) = written_value(written, out) {
        headers.insert(RATELIMIT, value);
    }
    if let Some(retry_after) = charges.iter().filter_map(|c| c.retry_after).max() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
}

/// One item of a rate-limit header: `"name";a=1;b=2`.
fn write_item(
    out: &mut Cursor<&mut [u8]>,
    name: &str,
    (a, first): (&str, u64),
    (b, second): (&str, u64),
) -> std::io::Result<()> {
    let mut digits = itoa::Buffer::new();
    out.write_all(b"\"")?;
    out.write_all(name.as_bytes())?;
    out.write_all(b"\";")?;
    out.write_all(a.as_bytes())?;
    out.write_all(b"=")?;
    out.write_all(digits.format(first).as_bytes())?;
    out.write_all(b";")?;
    out.write_all(b.as_bytes())?;
    out.write_all(b"=")?;
    out.write_all(digits.format(second).as_bytes())
}

/// What `out` holds as a header value, when it was all written. (Not
/// cloned on the way into the map: a clone of a value made from a slice
/// allocates to share its bytes.)
fn written_value(written: std::io::Result<()>, out: Cursor<&mut [u8]>) -> Option<HeaderValue> {
    let end = usize::try_from(out.position()).unwrap_or(usize::MAX);
    let buf = out.into_inner();
    let (Ok(()), Some(bytes)) = (written, buf.get(..end)) else {
        return None;
    };
    HeaderValue::from_bytes(bytes).ok()
}

/// The policies and rules a `RateLimit-Policy` value says, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PolicyRules([Option<(Policy, Rule)>; 5]);

/// `RateLimit-Policy` values made already. A deployment says a handful
/// (its policies, and the environments' own limits), each the same for
/// every request charged the same rules, so a request copies one instead
/// of writing and checking its text. Bounded: past [`KNOWN_POLICY_VALUES`]
/// values are written each time.
static KNOWN: RwLock<Vec<(PolicyRules, HeaderValue)>> = RwLock::new(Vec::new());
const KNOWN_POLICY_VALUES: usize = 32;

impl PolicyRules {
    fn of<'a>(shown: impl Iterator<Item = &'a &'a Charge>) -> Self {
        let mut rules = Self([None; 5]);
        for (slot, charge) in rules.0.iter_mut().zip(shown) {
            *slot = Some((charge.policy, charge.rule));
        }
        rules
    }

    fn known(&self) -> Option<HeaderValue> {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        known
            .iter()
            .find(|(rules, _)| rules == self)
            .map(|(_, value)| value.clone())
    }

    /// Keeps a copy of `value` for these rules, while there is room.
    fn keep(self, value: &HeaderValue) {
        let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
        if known.len() < KNOWN_POLICY_VALUES && !known.iter().any(|(rules, _)| *rules == self) {
            known.push((self, value.clone()));
        }
    }
}

/// The request's meter; an inactive one on a route that is not limited.
impl<S: Send + Sync> FromRequestParts<S> for Meter {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meter::current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the API and the sign-in post are limited.
    #[test]
    fn limited_routes() {
        assert!(is_limited(&Method::GET, "/v1/tokens/me"));
        assert!(is_limited(&Method::GET, "/v1/connect/oauth2/callback"));
        assert!(is_limited(&Method::POST, "/login"));
        for (m, r) in [
            (Method::GET, "/login"),
            (Method::GET, "/healthz"),
            (Method::GET, "/readyz"),
            (Method::GET, "/metrics"),
            (Method::GET, "/openapi.json"),
            (Method::GET, "/.well-known/jwks.json"),
            (Method::GET, "/assets/{name}"),
            (Method::GET, "/connect"),
            (Method::GET, "/"),
        ] {
            assert!(!is_limited(&m, r), "{m} {r}");
        }
    }
}
