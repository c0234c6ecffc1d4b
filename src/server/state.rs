//! AppState: one cheap-to-clone handle to the long-lived subsystems, built once in
//! `Server::build` (from [`super::ServerBuilder::start`]). Nothing per-connection lives here.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use super::shutdown::Shutdown;
use crate::accounts::Accounts;
use crate::apps::AppCache;
use crate::channel_tokens::ChannelTokens;
use crate::chat::Chat;
use crate::config::Config;
use crate::core::Realtime;
use crate::origins::GlobalOrigins;
use crate::ratelimit::RateLimiter;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::uploads::Uploads;

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
    /// Per-client-address request limits (`server.requests_per_ip_per_second`).
    pub ip_limits: RateLimiter,
    /// Shared with the chat socket's handlers.
    pub accounts: Arc<Accounts>,
    /// The Hestia chat service (REST and Socket.IO call it).
    pub chat: Chat,
    /// Refresh tokens of the Push-Alt admin API.
    pub sessions: Sessions,
    /// Tokens to join one channel (Push-Alt's `/api/channel/auth` and `join_channel`).
    pub channel_tokens: Arc<ChannelTokens>,
    /// The global origin list: CORS on Push-Alt's API, the Socket.IO handshake's origin.
    pub origins: Arc<GlobalOrigins>,
    /// The Engine.IO endpoints (`/ws?EIO=`, `/ws/`, `/socket.io/`) and their polling sessions.
    pub engineio: super::engineio::EngineIo,
    /// FCM and Web Push for chat users without a live socket.
    pub push: crate::push::Push,
    /// Profile pictures and banners under the data dir.
    pub uploads: Uploads,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl AppState {
    /// Picks up app changes made elsewhere (the periodic poll) and acts on them.
    pub async fn reload_apps(&self) -> Result<(), crate::store::Error> {
        let changes = self.apps.refresh().await?;
        self.close_gone(changes);
        Ok(())
    }

    /// Brings the app cache to `revision` (what an app change made through this node, or one
    /// announced from elsewhere, wrote), so the change is in force when this returns.
    pub async fn apps_changed(&self, revision: i64) -> Result<(), crate::store::Error> {
        let changes = self.apps.catch_up(revision).await?;
        self.close_gone(changes);
        Ok(())
    }

    /// Closes the live connections of apps that were disabled or deleted (Pusher 4003).
    fn close_gone(&self, changes: crate::apps::AppChanges) {
        for app in changes.gone {
            tracing::info!(app_id = %app, "app disabled or deleted: closing its connections");
            self.realtime.close_app(&app, crate::core::Disconnect::AppDisabled);
        }
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
