//! Which surface a request is for (SPEC §1): an app's hostname is that
//! app's surface; any other host under `.<apps_domain>` has only the ops
//! routes; every other host is the management surface. Hosts are compared
//! normalised ([`normalize_host`]). Only a valid DNS name other than the
//! management host can be an app's hostname, so nothing else is looked up
//! or cached; apps found are cached, and so are "no app" answers for names
//! under `apps_domain`, so routing costs no database read for a host seen
//! recently while a client sending made-up hosts cannot grow the cache
//! beyond its bound.

use std::{sync::Arc, time::Duration};

use gatehouse_core::validate::{normalize_host, Hostname};
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
    /// The host of `public_url`, which is never an app's.
    management_host: Option<String>,
}

impl HostCache {
    pub const CAPACITY: u64 = 10_000;

    pub fn new(public_url: &str) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(Self::CAPACITY)
                .time_to_live(Duration::from_secs(30))
                .build(),
            management_host: url::Url::parse(public_url)
                .ok()
                .and_then(|u| u.host_str().and_then(normalize_host)),
        }
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    /// How many hosts are cached now.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
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
    let hosts = svc.host_cache();
    if Hostname::parse(&host).is_err() || hosts.management_host.as_deref() == Some(&host) {
        return Ok(if under_apps_domain {
            Surface::UnknownAppHost
        } else {
            Surface::Management
        });
    }
    let app = match hosts.cache.get(&host) {
        Some(found) => found,
        None => {
            let found = svc.store().app_by_hostname(&host).await?.map(Arc::new);
            if found.is_some() || under_apps_domain {
                hosts.cache.insert(host, found.clone());
            }
            found
        }
    };
    Ok(match app {
        Some(app) => Surface::App(app),
        None if under_apps_domain => Surface::UnknownAppHost,
        None => Surface::Management,
    })
}
