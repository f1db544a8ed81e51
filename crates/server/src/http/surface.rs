//! Host-based routing (SPEC §1). The `Host` header (port and one trailing
//! dot ignored, case-insensitive; `X-Forwarded-Host` only when
//! `trust_forwarded_headers` is set) chooses the surface: an app's hostname
//! is that app's surface; any other host under `.<apps_domain>` only has the
//! ops routes; every other host is the management surface.

use std::{sync::Arc, time::Duration};

use axum::http::{header, request::Parts, HeaderMap, Uri};
use gatehouse_store::apps::App;

use crate::{error::ApiResult, state::AppState};

/// Which surface a request is for.
#[derive(Debug, Clone)]
pub enum Surface {
    Management,
    App(Arc<App>),
    /// A host under `apps_domain` that names no app.
    UnknownAppHost,
}

/// The app whose hostname a request was sent to; set on app-surface requests.
#[derive(Debug, Clone)]
pub struct AppSurface(pub Arc<App>);

/// Lower-cases a host, drops the port and one trailing dot. `None` for an
/// empty or malformed value.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The request's host, before normalisation.
pub fn request_host<'a>(
    headers: &'a HeaderMap,
    uri: &'a Uri,
    trust_forwarded: bool,
) -> Option<&'a str> {
    let forwarded = trust_forwarded
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    forwarded
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .or_else(|| uri.host())
}

/// Apps by hostname (and "no app" answers), for a short while, so routing
/// costs no database read for a host seen recently. Changes to an app drop
/// the cache on every node.
pub struct AppHosts {
    cache: moka::sync::Cache<String, Option<Arc<App>>>,
}

impl Default for AppHosts {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        }
    }
}

impl AppHosts {
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

impl AppState {
    /// The surface a request is for.
    pub async fn surface(&self, headers: &HeaderMap, uri: &Uri) -> ApiResult<Surface> {
        let Some(host) = request_host(headers, uri, self.config().trust_forwarded_headers)
            .and_then(normalize_host)
        else {
            return Ok(Surface::Management);
        };
        let apps_domain = &self.config().apps_domain;
        let under_apps_domain = host.len() > apps_domain.len()
            && host.ends_with(apps_domain.as_str())
            && host.as_bytes()[host.len() - apps_domain.len() - 1] == b'.';
        let app = match self.app_hosts().cache.get(&host) {
            Some(found) => found,
            None => {
                let found = self.store().app_by_hostname(&host).await?.map(Arc::new);
                self.app_hosts().cache.insert(host.clone(), found.clone());
                found
            }
        };
        Ok(match app {
            Some(app) => Surface::App(app),
            None if under_apps_domain => Surface::UnknownAppHost,
            None => Surface::Management,
        })
    }

    /// Drops cached host lookups and verified connect tokens (which carry
    /// their app) here and on every other node: after an app changes.
    pub async fn forget_apps(&self) {
        self.app_hosts().invalidate_all();
        self.connect_cache().invalidate_all();
        if let Err(err) = self.store().announce_invalidation("apps").await {
            tracing::warn!(error = %err, "could not announce an app change");
        }
    }
}

/// The app of an app-surface request.
pub fn app_of(parts: &Parts) -> Option<Arc<App>> {
    parts.extensions.get::<AppSurface>().map(|a| a.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hosts compare case-insensitively, without port or one trailing dot.
    #[test]
    fn normalises_hosts() {
        assert_eq!(
            normalize_host("Acme.Apps.Localhost:8080").as_deref(),
            Some("acme.apps.localhost")
        );
        assert_eq!(
            normalize_host("acme.apps.localhost.").as_deref(),
            Some("acme.apps.localhost")
        );
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(normalize_host(""), None);
    }
}
