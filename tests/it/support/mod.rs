//! Test support: `spawn_server`, a Pusher WebSocket client, a signed HTTP client.

pub mod binary;
pub mod chat;
pub mod http;
pub mod images;
pub mod push;
pub mod sio;
pub mod ws;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard::broker::{self, Broker, Envelope, MemoryBroker};
use switchboard::config::{Config, Secret};
use switchboard::server::{AppState, Server, ServerHandle};

pub use http::Http;
pub use ws::Ws;

pub const APP_ID: &str = "app-1";
pub const APP_KEY: &str = "key-1";
/// 16 characters at least, as the configuration requires of a pinned secret.
pub const APP_SECRET: &str = "secret-1-of-the-tests";

/// A running server with its own SQLite file in a temp dir.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    pub broker: Arc<SwitchBroker>,
    /// The one-time setup token the server printed at start (no admin exists yet).
    pub setup_token: Option<String>,
    handle: ServerHandle,
}

impl TestServer {
    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }

    pub fn ws_url(&self, key: &str) -> String {
        format!("ws://{}/app/{key}?protocol=7&client=rust-test&version=1.0", self.addr)
    }

    /// Connects with the default app's key and reads `connection_established`.
    pub async fn connect(&self) -> Ws {
        Ws::connect_established(&self.ws_url(APP_KEY)).await
    }

    /// Shuts down gracefully and waits until the server is done.
    pub async fn stop(self) {
        let stopped = tokio::time::timeout(Duration::from_secs(15), self.handle.shutdown()).await;
        stopped.expect("the server stops within 15 s").expect("the server stops cleanly");
    }

    /// Triggers a `marker` event on `channel` (which `ws` must hold) and requires it to be
    /// `ws`'s very next frame. A connection gets events in the order they were published, so
    /// anything published to it before (a member event, a relayed client event, an event that
    /// should have been held back) would come first: this observes that there was none.
    pub async fn assert_next_is_marker(&self, ws: &mut Ws, channel: &str) {
        let (status, body) =
            self.http().trigger(serde_json::json!({"name": "marker", "channel": channel, "data": "m"})).await;
        assert_eq!(status, 200, "{body}");
        let next = ws.recv().await;
        assert_eq!(
            next,
            serde_json::json!({"event": "marker", "channel": channel, "data": "m"}),
            "a frame came before the marker"
        );
    }

    /// Reloads the app cache now (what the background refresh does every interval).
    pub async fn refresh_apps(&self) {
        let changes = self.state.apps.refresh().await.unwrap();
        for app in changes.gone {
            self.state.realtime.close_app(&app, switchboard::core::Disconnect::AppDisabled);
        }
    }
}

/// A broker that can be switched off, to test 503s.
#[derive(Default)]
pub struct SwitchBroker {
    inner: MemoryBroker,
    down: AtomicBool,
}

impl SwitchBroker {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Broker for SwitchBroker {
    fn publish(&self, envelope: Envelope) -> Result<(), broker::Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(broker::Error::Unavailable);
        }
        self.inner.publish(envelope)
    }
    fn attach(&self, sink: Arc<dyn broker::Sink>) {
        self.inner.attach(sink)
    }
    fn healthy(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
    fn name(&self) -> &'static str {
        "test"
    }
}

/// Test configuration: loopback, port 0, a temp data dir, the pinned default app.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.bind = [127, 0, 0, 1].into();
    c.server.port = 0;
    c.server.data_dir = dir.to_path_buf();
    c.server.app_refresh_ms = 200;
    c.server.shutdown_grace_ms = 3000;
    c.log.level = "warn".into();
    c.default_app.id = Some(APP_ID.into());
    c.default_app.key = Some(APP_KEY.into());
    c.default_app.secret = Some(Secret(APP_SECRET.into()));
    // Tests register many accounts from one address; the limit tests lower these again.
    c.auth.requests_per_ip = 100_000;
    c.auth.failed_logins_per_account = 100_000;
    c
}

pub async fn spawn_server() -> TestServer {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let broker = Arc::new(SwitchBroker::default());
    let handle = Server::builder().config(config).broker(broker.clone()).start().await.unwrap();
    let addr = handle.local_addr();
    let state = handle.state().clone();
    let setup_token = handle.setup_token().map(str::to_owned);
    TestServer { addr, state, dir, broker, setup_token, handle }
}

/// A server whose `/socket.io/` serves `setup` (the builder's `socketio`).
pub async fn spawn_socketio(path: &str, setup: switchboard::transport::socketio::SocketIo) -> TestServer {
    assert_eq!(path, "/socket.io/", "the builder serves a program's Socket.IO setup there");
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let broker = Arc::new(SwitchBroker::default());
    let handle = Server::builder().config(config).broker(broker.clone()).socketio(setup).start().await.unwrap();
    let addr = handle.local_addr();
    let state = handle.state().clone();
    let setup_token = handle.setup_token().map(str::to_owned);
    TestServer { addr, state, dir, broker, setup_token, handle }
}

/// A server whose `/socket.io/` is a bare Engine.IO echo (the builder's `engineio`), for tests
/// of the transport alone; `/ws` still serves Push-Alt's Socket.IO.
pub async fn spawn_engineio_echo(tweak: impl FnOnce(&mut Config)) -> TestServer {
    use switchboard::transport::engineio::echo::Echo;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    tweak(&mut config);
    let broker = Arc::new(SwitchBroker::default());
    let handle = Server::builder()
        .config(config)
        .broker(broker.clone())
        .engineio(|realtime| Arc::new(Echo::new(realtime.clone(), "engine.io")))
        .start()
        .await
        .unwrap();
    let addr = handle.local_addr();
    let state = handle.state().clone();
    let setup_token = handle.setup_token().map(str::to_owned);
    TestServer { addr, state, dir, broker, setup_token, handle }
}

/// Changes the default app's settings in the store and reloads the cache.
pub async fn update_app(server: &TestServer, id: &str, f: impl FnOnce(&mut switchboard::apps::AppSettings)) {
    let app = server.state.apps.by_id(id).unwrap();
    let mut settings = app.settings.clone();
    f(&mut settings);
    switchboard::apps::set_settings(&server.state.store, id, &settings).await.unwrap();
    server.refresh_apps().await;
}

/// Creates a second app with given credentials.
pub async fn create_app(server: &TestServer, id: &str, key: &str, secret: &str) {
    switchboard::apps::create(
        &server.state.store,
        switchboard::apps::CreateApp {
            id: Some(id.into()),
            key: Some(key.into()),
            secret: Some(secret.into()),
            name: id.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    server.refresh_apps().await;
}

/// `key:hex(HMAC(secret, socket_id:channel[:channel_data]))`.
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let mut text = format!("{socket_id}:{channel}");
    if let Some(d) = channel_data {
        text.push(':');
        text.push_str(d);
    }
    format!("{key}:{}", switchboard::auth::hmac_hex(secret, &text))
}

pub fn auth(socket_id: &str, channel: &str) -> String {
    channel_auth(APP_KEY, APP_SECRET, socket_id, channel, None)
}

pub fn presence_auth(socket_id: &str, channel: &str, channel_data: &str) -> String {
    channel_auth(APP_KEY, APP_SECRET, socket_id, channel, Some(channel_data))
}

pub fn user_auth(socket_id: &str, user_data: &str) -> String {
    format!("{APP_KEY}:{}", switchboard::auth::hmac_hex(APP_SECRET, &format!("{socket_id}::user::{user_data}")))
}

/// How many requests a token bucket that starts full at `burst` and refills `rate` a second can
/// admit from a run of requests all made within `elapsed`: at least `burst` (a full bucket never
/// refuses its first ones), at most `burst` plus what really refilled meanwhile. On a quick run
/// (under `1/rate`) that is exactly `burst`; on a slow machine the bound follows the refill the
/// limiter did grant, so a rate test stays exact without depending on how fast the test ran.
pub fn bucket_admits(burst: u32, rate: u32, elapsed: Duration) -> RangeInclusive<usize> {
    let refilled = (elapsed.as_secs_f64() * f64::from(rate)).floor() as usize;
    burst as usize..=burst as usize + refilled
}

/// The `Retry-After` header as whole seconds; panics unless it is a positive integer.
pub fn retry_after(headers: &hyper::HeaderMap) -> u64 {
    let value = headers.get("retry-after").expect("a 429 carries Retry-After");
    let secs: u64 = value.to_str().ok().and_then(|v| v.parse().ok()).expect("Retry-After is delay-seconds");
    assert!(secs >= 1, "Retry-After is a positive number of seconds: {secs}");
    secs
}
