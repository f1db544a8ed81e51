//! Which surface a request is for (SPEC §1): an app's hostname is that
//! app's surface; any other host under `.<apps_domain>` has only the ops
//! routes; every other host is the management surface. Hosts are compared
//! normalised ([`normalize_host`]); recent answers, "no app" included, are
//! cached so routing costs no database read for a host seen recently.

use std::{sync::Arc, time::Duration};

use gatehouse_core::validate::normalize_host;
use gatehouse_store::apps::App;

use super::Services;
use crate::error::ApiResult;

/// Which surface a request is for.
#[derive(Debug, Clone)]
pub enum Surface {
    Management,
    App(Arc<App>),
    /// A host under `apps_domain` that names no app.
    UnknownAppHost,
}

/// Apps by hostname (and "no app" answers), for a short while. Changes to
/// an app drop the cache on every node.
pub struct HostCache {
    cache: moka::sync::Cache<String, Option<Arc<App>>>,
}

impl Default for HostCache {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        }
    }
}

impl HostCache {
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// The surface of a request sent to `host` (the raw `Host` value, if any).
pub async fn surface(svc: &Services, host: Option<&str>) -> ApiResult<Surface> {
    let Some(host) = host.and_then(normalize_host) else {
        return Ok(Surface::Management);
    };
    let apps_domain = &svc.config().apps_domain;
    let under_apps_domain = host.len() > apps_domain.len()
        && host.ends_with(apps_domain.as_str())
        && host.as_bytes()[host.len() - apps_domain.len() - 1] == b'.';
    let app = match svc.host_cache().cache.get(&host) {
        Some(found) => found,
        None => {
            let found = svc.store().app_by_hostname(&host).await?.map(Arc::new);
            svc.host_cache().cache.insert(host, found.clone());
            found
        }
    };
    Ok(match app {
        Some(app) => Surface::App(app),
        None if under_apps_domain => Surface::UnknownAppHost,
        None => Surface::Management,
    })
}
