//! Switchboard inside a Rust program: the program's `/health` replaces the built-in one, `/hello`
//! is its own and publishes `hello` on channel `greetings`, and `main` publishes a `tick` on
//! channel `clock` every second. Every subscriber gets them, whatever its transport. Ctrl-C
//! shuts it down gracefully.
//!
//! ```text
//! cargo run --example embed       # PORT=… for another port than 6001
//! curl localhost:6001/health        # the program's answer
//! curl localhost:6001/hello         # publishes `hello` on `greetings`
//! websocat 'ws://localhost:6001/ws?api_key=embed-key'   # then: {"event":"subscribe","data":{"channel":"clock"}}
//! ```
//!
//! tests/it/embed.rs drives this file's `start` and `routes`.

use std::path::PathBuf;
use std::time::Duration;

use switchboard::axum::Router;
use switchboard::axum::http::StatusCode;
use switchboard::axum::routing::get;
use switchboard::config::{Config, Secret};
use switchboard::{Publisher, Server, ServerHandle};

/// The app clients connect with (its key) and backends sign for (its secret).
pub const APP_ID: &str = "embed";
pub const APP_KEY: &str = "embed-key";
pub const APP_SECRET: &str = "embed-secret-change-me";

/// What the program's `/health` answers, in place of Switchboard's JSON.
pub const HEALTH: &str = "healthy, says the program";

/// The program's own routes; a path they route is theirs, every other one is Switchboard's.
pub fn routes(publisher: Publisher) -> Router {
    let hello = move || async move {
        match publisher.publish(APP_ID, "greetings", "hello", "someone said hello") {
            Ok(()) => (StatusCode::OK, "hello from the program".to_owned()),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    };
    Router::new().route("/health", get(|| async { HEALTH })).route("/hello", get(hello))
}

/// Starts Switchboard on `port` (0: any free one) of this machine, with its data in `data_dir`.
pub async fn start(port: u16, data_dir: PathBuf) -> anyhow::Result<ServerHandle> {
    let mut config = Config::default();
    config.default_app.id = Some(APP_ID.into());
    config.default_app.key = Some(APP_KEY.into());
    config.default_app.secret = Some(Secret(APP_SECRET.into()));
    Server::builder()
        .config(config)
        .bind([127, 0, 0, 1])
        .port(port)
        .data_dir(data_dir)
        .cors_origins(["http://localhost:3000"])
        .run_migrations(true)
        .routes_with(routes)
        .start()
        .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6001);
    let server = start(port, std::env::temp_dir().join("switchboard-embed-example")).await?;
    println!("Switchboard embedded on http://{}", server.local_addr());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    for n in 0u64.. {
        tokio::select! {
            _ = tick.tick() => server.publish(APP_ID, "clock", "tick", serde_json::json!({ "n": n }))?,
            _ = &mut stop => break,
        }
    }
    server.shutdown().await
}
