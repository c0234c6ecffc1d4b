//! [`ServerHandle`]: a running server as the program that started it sees it: the address it
//! listens on, publishing from Rust, and the graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::anyhow;
use tokio::task::JoinHandle;

use super::{AppState, Server};
use crate::broker;
use crate::core::{ChannelName, ChannelNameError, Data, Event, MAX_EVENT_NAME, fits_chars};
use crate::metrics;

/// A running server, from [`ServerBuilder::start`](super::ServerBuilder::start).
///
/// Dropping the handle starts the same graceful shutdown as [`shutdown`](Self::shutdown)
/// without waiting for it: the server's task has no other owner.
#[must_use = "dropping the handle shuts the server down"]
pub struct ServerHandle {
    addr: SocketAddr,
    state: AppState,
    publisher: Publisher,
    setup_token: Option<String>,
    /// `None` once the task has been awaited.
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Why [`ServerHandle::publish`] published nothing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no enabled app {0:?}")]
    UnknownApp(String),
    #[error("invalid channel {name:?}: {source}")]
    Channel { name: String, source: ChannelNameError },
    #[error("event name must be 1–200 characters")]
    EventName,
    /// `pusher:` and `pusher_internal:` events are the protocol's own (member events and the
    /// like): publishing them would forge protocol frames.
    #[error("event names starting with pusher: or pusher_internal: are reserved")]
    ReservedEvent,
    #[error("event data is {size} bytes; the app's limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    /// Nothing was published, so a retry cannot duplicate (SPEC §9).
    #[error("nothing was published: {0}")]
    Broker(#[from] broker::Error),
    /// The server is draining or stopped: its connections are being closed, nobody would get it.
    #[error("the server is shutting down; nothing was published")]
    ShuttingDown,
}

/// Publishes events from Rust into a running server ([`ServerHandle::publisher`]).
#[derive(Clone)]
pub struct Publisher(pub(super) AppState);

impl Publisher {
    /// Publishes `event` with `data` on `channel` of app `app_id`, as a Pusher HTTP trigger
    /// would: through the core and the broker, so every subscriber of the channel on every node
    /// gets it once, in its own transport's form. `data` is a string (every client gets that
    /// string) or a [`serde_json::Value`] (Notif and Socket.IO clients get the value, Pusher
    /// clients its JSON text). It is held to the app's message size limit.
    pub fn publish(&self, app_id: &str, channel: &str, event: &str, data: impl Into<Data>) -> Result<(), PublishError> {
        if self.0.shutdown.is_draining() {
            return Err(PublishError::ShuttingDown);
        }
        let app = self.0.apps.by_id(app_id).filter(|a| a.enabled);
        let app = app.ok_or_else(|| PublishError::UnknownApp(app_id.to_owned()))?;
        let name = ChannelName::parse_for_publish(channel)
            .map_err(|source| PublishError::Channel { name: channel.to_owned(), source })?;
        if event.is_empty() || !fits_chars(event, MAX_EVENT_NAME) {
            return Err(PublishError::EventName);
        }
        let data = data.into();
        let (Data::Text(text) | Data::Json(text)) = &data;
        let (size, limit) = (text.len(), app.limits().max_message_bytes);
        if size > limit {
            return Err(PublishError::TooLarge { size, limit });
        }
        let event = Event { channel: Some(name), name: Arc::from(event), data, user_id: None, except: None };
        if event.is_internal() {
            return Err(PublishError::ReservedEvent);
        }
        if !self.0.realtime.broker_healthy() {
            return Err(PublishError::Broker(broker::Error::Unavailable));
        }
        self.0.realtime.publish(&app.id, event)?;
        metrics::published("library");
        Ok(())
    }
}

/// How [`ServerHandle::run_until`] came out of its wait.
enum Woken {
    Stop,
    Ended(Result<anyhow::Result<()>, tokio::task::JoinError>),
}

impl ServerHandle {
    /// Serves `server` in a task of the current runtime.
    pub(super) fn spawn(server: Server) -> anyhow::Result<Self> {
        let addr = server.listener.local_addr()?;
        let state = server.state.clone();
        let setup_token = server.setup_token.as_ref().map(|t| t.expose().to_owned());
        let task = tokio::spawn(server.serve());
        Ok(Self { addr, publisher: Publisher(state.clone()), state, setup_token, task: Some(task) })
    }

    /// The address the server listens on (with the port picked when it was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The one-time token that sets up the first admin (`POST /api/setup/complete`), while
    /// none exists; it was printed at start as well.
    pub fn setup_token(&self) -> Option<&str> {
        self.setup_token.as_deref()
    }

    /// The server's subsystems (apps, store, core), for what the handle does not offer.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Publishes `event` with `data` on `channel` of app `app_id`: see [`Publisher::publish`].
    pub fn publish(&self, app_id: &str, channel: &str, event: &str, data: impl Into<Data>) -> Result<(), PublishError> {
        self.publisher.publish(app_id, channel, event, data)
    }

    /// A cheap, cloneable publisher for the program's own tasks and route handlers. It does
    /// not keep the server running: once shutdown starts, it answers
    /// [`PublishError::ShuttingDown`].
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Stops gracefully and waits until it is done: no new connections, WebSockets closed
    /// with "reconnect" (Pusher 4200), requests in flight finished within
    /// `server.shutdown_grace_ms`, the database closed. The error is one the server stopped
    /// with, if any.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.state.shutdown.trigger();
        match self.task.take() {
            Some(task) => joined(task.await),
            None => Ok(()),
        }
    }

    /// Serves until `stop` resolves (the binary passes SIGINT/SIGTERM), then shuts down as
    /// [`shutdown`](Self::shutdown) does; returns early if the server stops by itself.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Some(task) = self.task.as_mut() else { return Ok(()) };
        let woken = tokio::select! {
            ended = task => Woken::Ended(ended),
            () = stop => Woken::Stop,
        };
        match woken {
            Woken::Ended(ended) => {
                self.task = None;
                joined(ended)
            }
            Woken::Stop => self.shutdown().await,
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.state.shutdown.trigger();
        }
    }
}

fn joined(ended: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    ended.map_err(|e| anyhow!("the server task failed: {e}"))?
}
