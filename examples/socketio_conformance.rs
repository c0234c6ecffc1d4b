//! The server the Socket.IO project's protocol suites drive (`socketio/engine.io-protocol`,
//! folder `test-suite/`): on `127.0.0.1:$PORT` (default 3000), a bare Engine.IO echo at
//! `/engine.io/` with pingInterval 300 ms, pingTimeout 200 ms and maxPayload 1 000 000, built on
//! the library's Engine.IO transport.
//!
//! ```text
//! cargo run --release --example socketio_conformance
//! (cd engine.io-protocol/test-suite && npm install && npx mocha --retries 3)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard::broker::MemoryBroker;
use switchboard::core::{OutboxLimits, Realtime};
use switchboard::transport::engineio::{Endpoint, Options, echo::Echo};
use tokio_util::sync::CancellationToken;

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
    let engine = Endpoint::new(options, Arc::new(Echo::new(realtime, "conformance")), shutdown.clone());
    let app: axum::Router = engine.router("/engine.io/");
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
