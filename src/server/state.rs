//! AppState: one cheap-to-clone handle to the long-lived subsystems, built once in
//! [`super::Server::build`]. Nothing per-connection lives here.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use super::shutdown::Shutdown;
use crate::apps::AppCache;
use crate::config::Config;
use crate::core::Realtime;
use crate::ratelimit::RateLimiter;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    /// Immutable after start.
    pub config: Config,
    /// The realtime engine.
    pub realtime: Realtime,
    /// Store-backed, refreshed when apps change anywhere.
    pub apps: AppCache,
    pub store: Store,
    pub shutdown: Shutdown,
    pub metrics: Option<PrometheusHandle>,
    /// Per-app HTTP API limits.
    pub api_limits: RateLimiter,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
