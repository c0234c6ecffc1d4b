//! Wiring: build every subsystem once (store, apps, broker, core, routes), bind, serve, and
//! drain on shutdown. No rules live here. Every start, the binary's `serve` and an embedding
//! program's alike, goes through [`ServerBuilder`] and ends with a [`ServerHandle`].

mod builder;
mod capacity;
mod conn;
pub mod engineio;
pub mod forwarded;
mod handle;
mod peers;
mod router;
pub mod shutdown;
mod socket_setups;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::accounts::Accounts;
use crate::apps::{self, AppCache};
use crate::auth::{RawToken, jwt};
use crate::broker::Broker;
use crate::channel_tokens::ChannelTokens;
use crate::config::Config;
use crate::core::{Disconnect, OutboxLimits, Realtime, Transport};
use crate::origins::GlobalOrigins;
use crate::push::Push;
use crate::ratelimit::LogThrottle;
use crate::sessions::Sessions;
use crate::store::Store;
use crate::surfaces::{hestia, notif, pushalt, pusher};
use crate::transport::ws;
use crate::uploads::Uploads;

pub use builder::ServerBuilder;
pub use capacity::Capacity;
pub use forwarded::{ClientAddr, TrustedProxies};
pub use handle::{PublishError, Publisher, ServerHandle};
/// The part of the OpenAPI document for the routes the router serves itself.
pub(crate) use router::openapi as router_openapi;
pub use shutdown::Shutdown;
pub use state::{AppState, Shared};

/// The built-in route table as the server serves it (without an embedding program's routes):
/// for the test that finds every route in the OpenAPI document.
#[doc(hidden)]
pub fn builtin_router(state: AppState) -> axum::Router {
    router::build(state, None)
}

/// A server: [`Server::builder`] sets it up and starts it; the [`ServerHandle`] it returns
/// publishes, tells the address and shuts it down.
pub struct Server {
    listener: TcpListener,
    /// `/metrics` on an address of its own (`metrics.listen`).
    metrics_listener: Option<TcpListener>,
    state: AppState,
    router: Router,
    /// The one-time setup token printed at this start, while no admin exists.
    setup_token: Option<RawToken>,
}

/// What one start is made of; [`ServerBuilder`] fills it in.
struct Parts {
    config: Config,
    broker: Arc<dyn Broker>,
    /// Apply pending migrations; when off, a schema that is behind stops the start.
    migrate: bool,
    /// The embedding program's routes, which take precedence over the built-in ones.
    routes: Vec<RoutesFn>,
    /// What the embedding program serves at `/socket.io/`.
    socketio: Option<engineio::ProgramIo>,
}

/// The default app (SPEC §2): the pinned one, the one made at this start, else the oldest.
fn default_app_id(config: &Config, apps: &AppCache, created: Option<&apps::App>) -> Option<Arc<str>> {
    if let Some(app) = created {
        return Some(app.id.clone());
    }
    if let Some(id) = &config.default_app.id {
        return Some(id.as_str().into());
    }
    if let Some(key) = &config.default_app.key {
        return apps.by_key(key).map(|a| a.id.clone());
    }
    apps.all().into_iter().min_by_key(|a| a.number).map(|a| a.id.clone())
}

/// Makes some of the program's routes once the server can publish.
type RoutesFn = Box<dyn FnOnce(Publisher) -> Router + Send>;

impl Server {
    /// The one way to start a server, for the binary and embedding programs alike.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Checks the data dir, connects the store, migrates, binds, and makes sure the default app
    /// exists; then builds the core. Configuration problems come back as
    /// [`crate::config::ConfigError`].
    ///
    /// Every step that can fail on a bad setting (data dir, database, pinned app, port, JWT
    /// secret) runs before the default app is created: a start that fails must not create
    /// credentials the next start would not print again.
    async fn build(parts: Parts) -> anyhow::Result<Self> {
        let Parts { config, broker, migrate, routes, socketio } = parts;
        config.prepare_data_dir()?;
        let store = Store::connect(&config.database_url())
            .await
            .map_err(|e| config.invalid("database.url", format!("cannot open the database: {e}")))?;
        if migrate {
            store.migrate().await.context("running migrations")?;
        } else {
            store.check_migrated().await?;
        }
        check_pinned_key(&store, &config).await?;
        let listener = bind(&config).await?;
        let metrics_listener = bind_metrics(&config).await?;
        let jwt_secret =
            jwt::load_or_create_secret(config.auth.jwt_secret.as_ref().map(|s| s.0.as_str()), &config.server.data_dir)
                .map_err(|e| config.invalid("server.data_dir", format!("cannot keep the JWT secret there: {e}")))?;
        let cors_origins =
            GlobalOrigins::parse(&config.server.cors_origins).map_err(|e| config.invalid("server.cors_origins", e))?;
        // Reads the service account and the VAPID key: a bad one stops the start here.
        let shutdown = Shutdown::default();
        let push = Push::start(store.clone(), &config.push, &config.server.data_dir, shutdown.token())
            .map_err(|(key, why)| config.invalid(key, why))?;
        let created = apps::ensure_default(&store, &config.default_app).await.context("creating the default app")?;
        let apps = AppCache::load(store.clone()).await.context("loading apps")?;
        notif::broadcast::warn_legacy_publishers(&apps);
        pushalt::warn_open_emitters(&apps);
        let origins = Arc::new(
            GlobalOrigins::load(cors_origins, store.clone(), apps.clone()).await.context("reading the CORS list")?,
        );
        let realtime = Realtime::new(
            broker,
            OutboxLimits {
                max_bytes: config.connection.outbox_max_bytes,
                max_frames: config.connection.outbox_max_frames,
            },
        );
        // Both speak WebSocket: a fanned-out event is framed once, ready for every socket.
        realtime.register_encoder(Transport::Pusher, |e| ws::text_frame(&pusher::protocol::encode_event(e)));
        realtime.register_encoder(Transport::Notif, |e| ws::text_frame(&notif::protocol::encode_event(e)));
        let accounts = Arc::new(Accounts::new(store.clone(), &jwt_secret, config.auth.clone()));
        let chat = crate::chat::Chat::new(store.clone(), realtime.clone(), config.chat.clone(), Some(push.clone()))
            .map_err(|e| config.invalid("chat.encryption_key", e))?;
        {
            let chat = chat.clone();
            accounts.on_tokens_voided(move |id| chat.close_user_sockets(id));
        }
        let uploads = Uploads::open(&config.server.data_dir, config.uploads.clone())
            .map_err(|e| config.invalid("server.data_dir", format!("cannot keep uploads there: {e}")))?;
        let setup_token = accounts.prepare_setup_token().await.context("making the setup token")?;
        let default_app = default_app_id(&config, &apps, created.as_ref().map(|(app, _)| app));
        let channel_tokens = Arc::new(ChannelTokens::new(store.clone()));
        let engineio = socket_setups::build(
            &config.socketio,
            &realtime,
            &origins,
            &shutdown,
            pushalt::socketio::Deps {
                apps: apps.clone(),
                tokens: channel_tokens.clone(),
                realtime: realtime.clone(),
                shutdown: shutdown.token(),
            },
            hestia::socketio::Deps { accounts: accounts.clone(), chat: chat.clone(), shutdown: shutdown.token() },
            socketio,
            default_app,
        )
        .context("setting up Socket.IO")?;
        let state = AppState::new(Shared {
            config,
            realtime,
            apps,
            sessions: Sessions::new(store.clone()),
            channel_tokens,
            store,
            shutdown,
            metrics: crate::metrics::install(),
            api_limits: Default::default(),
            ip_limits: Default::default(),
            accounts,
            chat,
            origins,
            engineio,
            push,
            uploads,
        });
        let publisher = Publisher(state.clone());
        let program = routes.into_iter().map(|make| make(publisher.clone())).reduce(Router::merge);
        let router = router::build(state.clone(), program);
        if let Some((app, true)) = created {
            // SPEC §2: the first start prints the default app's credentials (stdout, not the log).
            println!("Default app created: id={} key={} secret={}", app.id, app.key, app.secret.0);
        }
        if let Some(token) = &setup_token {
            // SPEC §2, §5: until an admin exists, each start prints a token that sets one up.
            println!(
                "Setup token (creates the first admin once, within 24 hours, with POST /api/setup/complete): {}",
                token.expose()
            );
        }
        Ok(Self { listener, metrics_listener, state, router, setup_token })
    }

    /// Serves until [`Shutdown::trigger`] is called, then drains.
    async fn serve(self) -> anyhow::Result<()> {
        let Self { listener, metrics_listener, state, router, .. } = self;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening on http://{addr}");
        let tasks = TaskTracker::new();
        tasks.spawn(refresh_apps(state.clone()));
        tasks.spawn(sweep(state.clone()));
        let token = state.shutdown.token();
        if let Some(metrics_listener) = metrics_listener {
            tasks.spawn(serve_metrics(metrics_listener, state.clone(), token.clone()));
        }
        let capacity = Capacity::at_start(state.config.server.max_connections);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(state.config.server.handshake_timeout())
            .max_buf_size(state.config.server.max_header_bytes.max(8192))
            .keep_alive(true);
        // Over capacity: one request, quickly, then close.
        let mut overflow_http = http.clone();
        overflow_http.header_read_timeout(OVERFLOW_HEADER_TIMEOUT).keep_alive(false);
        let conn = conn::ConnectionContext {
            router,
            token: token.clone(),
            trusted: Arc::new(TrustedProxies::new(
                &state.config.server.trusted_proxies,
                state.config.server.forwarded_header,
            )),
            idle_limit: state.config.server.handshake_timeout(),
        };
        let peers = Arc::new(peers::PeerCounts::default());
        // A polling session holds no TCP connection of its own: it takes a slot like one.
        state.engineio.admit_with(capacity.clone(), peers.clone(), state.config.server.max_connections_per_ip);
        let mut spare = spare_descriptor();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) if out_of_descriptors(&e) => {
                            // Whatever the budget says, the process ran out: take the waiting
                            // connection off the queue with the spare descriptor and close it,
                            // rather than leave its client hanging.
                            capacity.refused();
                            drop(spare.take());
                            if let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::from_millis(5), listener.accept()).await {
                                drop(stream);
                            }
                            spare = spare_descriptor();
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                        Err(e) => {
                            if let Some(held_back) = ACCEPT_ERRORS.allow() {
                                tracing::warn!(error = %e, since_last_warning = held_back + 1, "accept failed");
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                    };
                    let (slot, overflow) = match capacity.admit() {
                        capacity::Admission::Admitted(slot) => (slot, false),
                        capacity::Admission::Overflow(slot) => (slot, true),
                        capacity::Admission::Refused => continue,
                    };
                    let per_ip = match state.config.server.max_connections_per_ip {
                        0 => None,
                        max => match peers.admit(crate::ratelimit::address_key(peer.ip()), max) {
                            Some(slot) => Some(slot),
                            None => {
                                tasks.spawn(peers::refuse(stream, slot));
                                continue;
                            }
                        },
                    };
                    let _ = stream.set_nodelay(true);
                    let held = ws::HeldForConnection(Arc::new((slot, per_ip)));
                    let builder = if overflow { overflow_http.clone() } else { http.clone() };
                    let accepted = conn::Accepted { stream, peer, held, overflow };
                    tasks.spawn(conn::serve(builder, accepted, conn.clone()));
                }
            }
        }
        drop(listener);
        tracing::info!("shutting down: closing connections");
        state.shutdown.trigger();
        state.realtime.close_all(Disconnect::Shutdown);
        tasks.close();
        let grace = state.config.server.shutdown_grace();
        let drained = tokio::time::timeout(grace, async {
            tasks.wait().await;
            while state.realtime.total_connections() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown grace period over; exiting with connections still open");
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a connection over capacity gets to send its request head.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// `accept` failures other than running out of descriptors, warned about once a second.
static ACCEPT_ERRORS: LogThrottle = LogThrottle::new(Duration::from_secs(1));

fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE (the process) and ENFILE (the system).
    matches!(e.raw_os_error(), Some(24 | 23))
}

/// A descriptor held back for the moment the process runs out (see the accept loop).
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Marks the requests of a connection accepted over capacity (router: 503 but for `/health`
/// and `/metrics`).
#[derive(Clone, Copy)]
pub struct OverCapacity;

/// The listener of `/metrics` on its own address (`metrics.listen`), bound with the main port
/// so a bad address stops start-up.
async fn bind_metrics(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = config.metrics.listen else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| config.invalid("metrics.listen", format!("cannot listen there: {e}")))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics on http://{addr}/metrics");
    Ok(Some(listener))
}

/// Serves `/metrics` alone on its own listener until shutdown.
async fn serve_metrics(listener: TcpListener, state: AppState, token: tokio_util::sync::CancellationToken) {
    let router = router::metrics_only(state.clone());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(state.config.server.handshake_timeout()).keep_alive(true);
    let tasks = TaskTracker::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let router = router.clone();
                let http = http.clone();
                let token = token.clone();
                tasks.spawn(async move {
                    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        let mut router = router.clone();
                        async move { router.call(req).await }
                    });
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = token.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        }
    }
    tasks.close();
    tasks.wait().await;
}

/// Binds the listening socket; a refusal names the setting behind it (the port, or the
/// address when it is not this machine's).
async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    let (ip, port) = (config.server.bind, config.server.port);
    TcpListener::bind((ip, port)).await.map_err(|e| {
        let addr = SocketAddr::new(ip, port);
        let err = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                config.invalid("server.port", format!("cannot listen on {addr}: address in use"))
            }
            std::io::ErrorKind::AddrNotAvailable => {
                config.invalid("server.bind", format!("cannot listen on {addr}: not an address of this machine"))
            }
            std::io::ErrorKind::PermissionDenied => {
                config.invalid("server.port", format!("cannot listen on {addr}: permission denied"))
            }
            _ => config.invalid("server.port", format!("cannot listen on {addr}: {e}")),
        };
        err.into()
    })
}

/// A pinned key that another app already has would fail the default app's update half-way
/// through start-up: it is a configuration error, found before anything is written.
async fn check_pinned_key(store: &Store, config: &Config) -> anyhow::Result<()> {
    let (Some(id), Some(key)) = (&config.default_app.id, &config.default_app.key) else {
        return Ok(());
    };
    let all = apps::list(store).await.context("reading apps")?;
    if let Some(other) = all.iter().find(|a| &*a.key == key && &*a.id != id) {
        return Err(config.invalid("default_app.key", format!("already the key of app {:?}", &*other.id)).into());
    }
    Ok(())
}

/// Picks up app and CORS-list changes made elsewhere (CLI, API on another node) and closes the
/// connections of apps that were disabled or deleted.
async fn refresh_apps(state: AppState) {
    let token = state.shutdown.token();
    let mut tick = tokio::time::interval(state.config.server.app_refresh());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = state.reload_apps().await {
            tracing::warn!(error = %e, "refreshing apps failed");
        }
        if let Err(e) = state.origins.refresh().await {
            tracing::warn!(error = %e, "refreshing the CORS list failed; the last one read stays in force");
        }
    }
}

/// Expires cache-channel events and forgets refilled rate-limit buckets.
async fn sweep(state: AppState) {
    let token = state.shutdown.token();
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {
                state.realtime.sweep();
                state.api_limits.sweep();
                state.ip_limits.sweep();
                state.accounts.sweep();
                state.chat.sweep();
                state.uploads.sweep();
            }
        }
    }
}
