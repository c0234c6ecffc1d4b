//! Switchboard: a self-hosted real-time messaging server in one binary.
//!
//! Layers, top to bottom (STYLE.md §1):
//! - `main`, [`cli`], [`server`]: wiring only; they build everything once and hold no rules.
//! - [`surfaces`]: one adapter per compatibility product (Pusher, ops, …): routes, codec, errors.
//! - [`transport`]: the WebSocket connection loop the surfaces share.
//! - services ([`apps`], [`accounts`], [`sessions`], [`channel_tokens`], [`origins`], [`auth`],
//!   [`probe`], [`push`], [`uploads`]): rules several surfaces need.
//! - [`core`]: the transport-neutral realtime engine (channels, presence, fan-out).
//! - [`broker`], [`store`]: backends behind small seams; they import nothing above them.
//! - [`config`], [`metrics`]: leaves any layer may use.
//!
//! # Embedding
//!
//! A Rust program can run Switchboard inside itself, as Push-Alt's users ran
//! `createPushAlt({...})` (SPEC §5 "Library use"). [`Server::builder`] sets it up (the
//! `switchboard` binary starts its server the same way), the program's own axum routes take
//! precedence over the built-in ones, and the [`ServerHandle`] that
//! [`start`](ServerBuilder::start) returns tells the bound address, publishes events from Rust
//! to any channel of any app (every transport, every node), and shuts down gracefully.
//!
//! ```no_run
//! use switchboard::axum::{Router, routing::get};
//! use switchboard::config::{Config, Secret};
//! use switchboard::Server;
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     // The app clients connect to (its key) and backends sign with (its secret).
//!     let mut config = Config::default();
//!     config.default_app.id = Some("my-app".into());
//!     config.default_app.key = Some("my-key".into());
//!     config.default_app.secret = Some(Secret("my-secret-of-16-chars-or-more".into()));
//!
//!     // The program's `/health` replaces the built-in one; `/hello` is its own.
//!     let routes = Router::new()
//!         .route("/health", get(|| async { "ok, says the program" }))
//!         .route("/hello", get(|| async { "hello" }));
//!
//!     let server = Server::builder()
//!         .config(config)
//!         .port(6001)
//!         .cors_origins(["https://app.example.com"])
//!         .database_url("sqlite://./data/switchboard.db")
//!         .run_migrations(true)
//!         .routes(routes)
//!         .start()
//!         .await?;
//!     println!("listening on {}", server.local_addr());
//!
//!     // Every subscriber of `orders` gets it, whatever its transport.
//!     server.publish("my-app", "orders", "created", serde_json::json!({ "id": 7 }))?;
//!
//!     server.run_until(async { tokio::signal::ctrl_c().await.unwrap_or_default() }).await
//! }
//! ```
//!
//! `examples/embed.rs` runs the same (`cargo run --example embed`).

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod channel_tokens;
pub mod chat;
pub mod cli;
pub mod config;
pub mod core;
pub mod metrics;
pub mod origins;
pub mod probe;
pub mod push;
pub mod ratelimit;
pub mod server;
pub mod sessions;
pub mod store;
pub mod surfaces;
pub mod transport;
pub mod uploads;

/// The axum the program's [`ServerBuilder::routes`] are built with, so that its version is
/// Switchboard's.
pub use axum;
pub use server::{PublishError, Publisher, Server, ServerBuilder, ServerHandle};
