//! The server the Socket.IO project's protocol suites drive (`socketio/engine.io-protocol`,
//! folder `test-suite/`): on `127.0.0.1:$PORT` (default 3000), a bare Engine.IO echo at
//! `/engine.io/` with pingInterval 300 ms, pingTimeout 200 ms and maxPayload 1 000 000. It is a
//! Switchboard server built with the library's builder, the echo endpoint one of its routes, so
//! the suite drives the transport production runs.
//!
//! ```text
//! cargo run --release --example socketio_conformance
//! (cd engine.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! ```

use std::sync::Arc;
use std::time::Duration;

use switchboard::broker::MemoryBroker;
use switchboard::config::SocketIoConfig;
use switchboard::core::{OutboxLimits, Realtime};
use switchboard::transport::engineio::{Endpoint, Options, echo::Echo};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let socketio =
        SocketIoConfig { ping_interval_ms: 300, ping_timeout_ms: 200, max_payload: 1_000_000, ..Default::default() };
    // The echo's sessions join no channel: an engine of their own (the server's is made by
    // `start`, after the routes are given).
    let realtime = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 4096 });
    let options = Options {
        ping_interval: Duration::from_millis(socketio.ping_interval_ms),
        ping_timeout: Duration::from_millis(socketio.ping_timeout_ms),
        max_payload: socketio.max_payload,
        ..Options::default()
    };
    let stop = CancellationToken::new();
    let echo = Endpoint::new(options, Arc::new(Echo::new(realtime, "engine.io")), stop.clone());
    let data = tempfile::tempdir()?;
    let server = switchboard::Server::builder()
        .bind([127, 0, 0, 1])
        .port(port)
        .data_dir(data.path())
        .socketio(socketio)
        .routes(echo.router("/engine.io/"))
        .start()
        .await?;
    println!("listening on http://{}", server.local_addr());
    let _ = tokio::signal::ctrl_c().await;
    stop.cancel();
    server.shutdown().await
}
