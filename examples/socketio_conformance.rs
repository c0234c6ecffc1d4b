//! The server the Socket.IO project's protocol suites drive (`socketio/engine.io-protocol` and
//! `socketio/socket.io-protocol`, folder `test-suite/` in each): on `127.0.0.1:$PORT` (default
//! 3000), with pingInterval 300 ms, pingTimeout 200 ms and maxPayload 1 000 000, built on the
//! library's Engine.IO and Socket.IO transports:
//! - a bare Engine.IO echo at `/engine.io/`;
//! - Socket.IO at `/socket.io/`: namespaces `/` and `/custom` (others refused with `Invalid
//!   namespace`), connectTimeout 1000 ms, `auth` emitted back on connect, `message` answered
//!   with `message-back` and the same arguments, `message-with-ack` acked with its arguments.
//!
//! ```text
//! cargo run --release --example socketio_conformance
//! (cd engine.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! (cd socket.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard::broker::MemoryBroker;
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
    let realtime =
        Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1024 * 1024, max_frames: 4096 });
    let options = Options {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        ..Options::default()
    };
    let shutdown = CancellationToken::new();
    let engine = Endpoint::new(options.clone(), Arc::new(Echo::new(realtime.clone(), "conformance")), shutdown.clone());
    let socketio = SocketIo::new()
        .connect_timeout(Duration::from_millis(1000))
        .namespace("/", conformance_namespace())
        .namespace("/custom", conformance_namespace())
        .bind(&realtime)?;
    let socketio = Endpoint::new(options, socketio, shutdown.clone());
    let app: axum::Router = engine.router("/engine.io/").merge(socketio.router("/socket.io/"));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            // The transport writes to the upgraded TCP stream itself: hyper must hand it over as
            // it is (`TokioIo<TcpStream>`), as the switchboard server does.
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let mut app = app.clone();
                async move { tower::Service::call(&mut app, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            let _ = conn.await;
        });
    }
    shutdown.cancel();
    Ok(())
}
