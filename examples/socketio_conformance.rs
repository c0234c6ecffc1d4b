//! The server the Socket.IO project's protocol suites drive (`socketio/engine.io-protocol` and
//! `socketio/socket.io-protocol`, folder `test-suite/` in each): on `127.0.0.1:$PORT` (default
//! 3000), with pingInterval 300 ms, pingTimeout 200 ms and maxPayload 1 000 000:
//! - a bare Engine.IO echo at `/engine.io/`;
//! - Socket.IO at `/socket.io/`: namespaces `/` and `/custom` (others refused with `Invalid
//!   namespace`), connectTimeout 1000 ms, `auth` emitted back on connect, `message` answered
//!   with `message-back` and the same arguments, `message-with-ack` acked with its arguments.
//!
//! It is a Switchboard server built with the library's builder (the Socket.IO namespaces given
//! to `socketio`, the echo endpoint one of its routes), so the suites drive the transport
//! production runs.
//!
//! ```text
//! cargo run --release --example socketio_conformance
//! (cd engine.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! (cd socket.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! ```

use std::sync::Arc;
use std::time::Duration;

use switchboard::broker::MemoryBroker;
use switchboard::config::SocketIoConfig;
use switchboard::core::{OutboxLimits, Realtime};
use switchboard::transport::engineio::{Endpoint, Options, echo::Echo};
use switchboard::transport::socketio::{Args, Namespace, SocketIo};
use tokio_util::sync::CancellationToken;

/// What the socket.io-protocol suite expects of `/` and `/custom`.
fn conformance_namespace() -> Namespace {
    Namespace::new()
        .on_connect(|socket, auth| {
            // `auth` is the client's JSON object (`{}` without one), sent back as it came.
            let auth: serde_json::Value = serde_json::from_str(auth).unwrap_or_default();
            if let Ok(args) = Args::json(&auth) {
                let _ = socket.emit("auth", &args);
            }
            Ok(())
        })
        .on("message", |socket, message| {
            let _ = socket.emit("message-back", &message.args);
        })
        .on("message-with-ack", |_, message| {
            if let Some(ack) = message.ack {
                let _ = ack.send(&message.args);
            }
        })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let socketio = SocketIoConfig {
        ping_interval_ms: 300,
        ping_timeout_ms: 200,
        max_payload: 1_000_000,
        connect_timeout_ms: 1000,
        ..Default::default()
    };
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
    let namespaces =
        SocketIo::new().namespace("/", conformance_namespace()).namespace("/custom", conformance_namespace());
    let data = tempfile::tempdir()?;
    let server = switchboard::Server::builder()
        .bind([127, 0, 0, 1])
        .port(port)
        .data_dir(data.path())
        .socketio_options(socketio)
        .socketio(namespaces)
        .routes(echo.router("/engine.io/"))
        .start()
        .await?;
    println!("listening on http://{}", server.local_addr());
    let _ = tokio::signal::ctrl_c().await;
    stop.cancel();
    server.shutdown().await
}
