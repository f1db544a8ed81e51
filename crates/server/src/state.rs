//! What every request handler is given: the [`Services`] of the use cases,
//! and the process's Prometheus recorder (for `/metrics`). Cheap to clone.
//! It dereferences to [`Services`], so `state.config()` and the like read
//! naturally.

use std::ops::Deref;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::service::Services;

#[derive(Clone)]
pub struct AppState {
    services: Services,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(services: Services, metrics: PrometheusHandle) -> Self {
        Self { services, metrics }
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.metrics
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
