//! [`ServerBuilder`]: how a program (the `switchboard` binary among them) sets up and starts a
//! server (SPEC §5 "Library use", as Push-Alt's `createPushAlt({...})`). Only wiring: each
//! method sets a [`Config`] field or a part of the start, and [`ServerBuilder::start`] builds,
//! binds and serves.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;

use super::engineio::ProgramIo;
use super::{Parts, Publisher, RoutesFn, Server, ServerHandle};
use crate::broker::{Broker, MemoryBroker};
use crate::config::{Config, SocketIoConfig};
use crate::core::Realtime;
use crate::transport::engineio::Protocol;
use crate::transport::socketio::SocketIo;

/// Sets up a server: `Server::builder()…start().await`.
///
/// Settings start from [`Config::default`], or from the [`Config`] given to
/// [`config`](Self::config) (for instance [`Config::load`], which reads `switchboard.toml` and
/// the environment as the binary does). The other setters override single fields of it,
/// whatever order they are called in. Everything is validated once, in [`start`](Self::start).
///
/// Socket.IO: the program's namespaces and handlers with [`socketio`](Self::socketio), the
/// Engine.IO options (ping interval and timeout, `maxPayload`, the connect timeout) with
/// [`socketio_options`](Self::socketio_options).
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct ServerBuilder {
    config: Option<Config>,
    port: Option<u16>,
    bind: Option<IpAddr>,
    cors_origins: Option<Vec<String>>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    run_migrations: bool,
    broker: Option<Arc<dyn Broker>>,
    routes: Vec<RoutesFn>,
    socketio: Option<ProgramIo>,
    socketio_options: Option<SocketIoConfig>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            config: None,
            port: None,
            bind: None,
            cors_origins: None,
            database_url: None,
            data_dir: None,
            run_migrations: true,
            broker: None,
            routes: Vec::new(),
            socketio: None,
            socketio_options: None,
        }
    }
}

impl ServerBuilder {
    /// The whole configuration the setters below start from (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// TCP port (`server.port`); 0 picks a free one, which
    /// [`ServerHandle::local_addr`] then tells.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Address to listen on (`server.bind`), e.g. `[127, 0, 0, 1]` for this machine only.
    pub fn bind(mut self, addr: impl Into<IpAddr>) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// Origins browsers may call the Push-Alt API from (`server.cors_origins`):
    /// `[scheme://]host[:port]` or `*.domain`. Replaces the configured list.
    pub fn cors_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cors_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Database URL (`database.url`): `sqlite://…`, `postgres://…` or `mysql://…`. Default:
    /// SQLite in the data directory.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Where SQLite, uploads and generated secrets live (`server.data_dir`).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Whether `start` applies pending database migrations (default `true`). When `false`
    /// (the schema is managed elsewhere, e.g. by `switchboard migrate` in a deploy step), a
    /// database that lacks a migration stops the start with an error naming it.
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    /// The broker every publish goes through, to reach the other nodes of a cluster (default:
    /// the in-process [`MemoryBroker`], for a single node).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// The Engine.IO/Socket.IO options (`socketio`: pingInterval, pingTimeout, maxPayload,
    /// connectTimeout, polling sessions held), as Push-Alt's `socketOptions`; they apply to
    /// every Socket.IO endpoint.
    pub fn socketio_options(mut self, options: SocketIoConfig) -> Self {
        self.socketio_options = Some(options);
        self
    }

    /// The program's own routes, served before the built-in ones: a path the program routes is
    /// the program's (even `/health`), every other path reaches Switchboard. The router's own
    /// fallback, if any, is replaced by the built-in routes. Called again (or with
    /// [`routes_with`](Self::routes_with)), the routers are merged, which panics on a path two
    /// of them route, as [`Router::merge`] does.
    ///
    /// The program's routes pass the same admission as the built-in ones (the per-address
    /// request rate, the capacity refusal, the request deadline) and are counted in the HTTP
    /// metrics by their route template; their answers are left as they are.
    pub fn routes(self, routes: Router) -> Self {
        self.routes_with(move |_| routes)
    }

    /// [`routes`](Self::routes) made with a [`Publisher`], for handlers that publish (as
    /// `server(({app}) => …)` gave Push-Alt's routes the app): `make` is called once, during
    /// [`start`](Self::start).
    pub fn routes_with(mut self, make: impl FnOnce(Publisher) -> Router + Send + 'static) -> Self {
        self.routes.push(Box::new(make));
        self
    }

    /// The program's Socket.IO namespaces, served at `/socket.io/` (socket.io-client's default
    /// path) over polling and WebSocket in place of Hestia's chat socket (which is served there
    /// otherwise). Its connections join the default app (its channels:
    /// a Pusher trigger or [`ServerHandle::publish`] on a channel a socket joined reaches it),
    /// unless the setup names another with [`SocketIo::app`] or [`SocketIo::admit`]. Called
    /// again, the last setup wins.
    ///
    /// ```no_run
    /// # async fn run() -> anyhow::Result<()> {
    /// use switchboard::server::Server;
    /// use switchboard::transport::socketio::{Args, Namespace, SocketIo};
    ///
    /// let chat = Namespace::new()
    ///     .on_connect(|socket, _auth| {
    ///         socket.emit("welcome", &Args::new()).ok();
    ///         Ok(())
    ///     })
    ///     .on("ping", |socket, message| {
    ///         if let Some(ack) = message.ack {
    ///             ack.send(&message.args).ok();
    ///         }
    ///     });
    /// let server = Server::builder().port(3000).socketio(SocketIo::new().namespace("/", chat)).start().await?;
    /// # server.shutdown().await?; Ok(()) }
    /// ```
    pub fn socketio(mut self, setup: SocketIo) -> Self {
        self.socketio = Some(ProgramIo::SocketIo(setup));
        self
    }

    /// A bare Engine.IO protocol of the program's at `/socket.io/` instead of Socket.IO (for a
    /// protocol of its own on Engine.IO's transports): `make` is called once, during
    /// [`start`](Self::start), with the server's core, whose connections the protocol's sessions
    /// are (see [`crate::transport::engineio`]). Replaces [`socketio`](Self::socketio).
    pub fn engineio(mut self, make: impl FnOnce(&Realtime) -> Arc<dyn Protocol> + Send + 'static) -> Self {
        self.socketio = Some(ProgramIo::EngineIo(Box::new(make)));
        self
    }

    /// Validates the configuration, opens and (unless turned off) migrates the database, binds,
    /// and serves in a task of the current Tokio runtime until
    /// [`ServerHandle::shutdown`]. A bad setting comes back as a
    /// [`ConfigError`](crate::config::ConfigError) naming it.
    pub async fn start(self) -> anyhow::Result<ServerHandle> {
        let Self {
            config,
            port,
            bind,
            cors_origins,
            database_url,
            data_dir,
            run_migrations,
            broker,
            routes,
            socketio,
            socketio_options,
        } = self;
        let mut config = config.unwrap_or_default();
        if let Some(port) = port {
            config.server.port = port;
            config.set_by_builder("server.port", "port");
        }
        if let Some(bind) = bind {
            config.server.bind = bind;
            config.set_by_builder("server.bind", "bind");
        }
        if let Some(origins) = cors_origins {
            config.server.cors_origins = origins;
            config.set_by_builder("server.cors_origins", "cors_origins");
        }
        if let Some(url) = database_url {
            config.database.url = Some(url);
            config.set_by_builder("database.url", "database_url");
        }
        if let Some(dir) = data_dir {
            config.server.data_dir = dir;
            config.set_by_builder("server.data_dir", "data_dir");
        }
        if let Some(options) = socketio_options {
            config.socketio = options;
            for key in [
                "socketio.ping_interval_ms",
                "socketio.ping_timeout_ms",
                "socketio.max_payload",
                "socketio.connect_timeout_ms",
                "socketio.max_polling_sessions",
            ] {
                config.set_by_builder(key, "socketio_options");
            }
        }
        config.validate()?;
        let broker = broker.unwrap_or_else(|| Arc::new(MemoryBroker::new()));
        let server = Server::build(Parts { config, broker, migrate: run_migrations, routes, socketio }).await?;
        ServerHandle::spawn(server)
    }
}
