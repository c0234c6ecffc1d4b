//! Switchboard: a self-hosted real-time messaging server in one binary.
//!
//! Layers, top to bottom (STYLE.md §1):
//! - `main`, [`cli`], [`server`]: wiring only; they build everything once and hold no rules.
//! - [`surfaces`]: one adapter per compatibility product (Pusher, ops, …): routes, codec, errors.
//! - [`transport`]: the WebSocket connection loop the surfaces share.
//! - services ([`apps`], [`accounts`], [`sessions`], [`channel_tokens`], [`origins`], [`auth`],
//!   [`probe`]): rules several surfaces need.
//! - [`core`]: the transport-neutral realtime engine (channels, presence, fan-out).
//! - [`broker`], [`store`]: backends behind small seams; they import nothing above them.
//! - [`config`], [`metrics`]: leaves any layer may use.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod channel_tokens;
pub mod cli;
pub mod config;
pub mod core;
pub mod metrics;
pub mod origins;
pub mod probe;
pub mod ratelimit;
pub mod server;
pub mod sessions;
pub mod store;
pub mod surfaces;
pub mod transport;
