//! The single integration-test binary: every test starts the real server on an ephemeral port
//! and talks to it with real WebSocket and HTTP clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod accounts;
mod app_cache;
mod bodies;
mod capacity;
mod cli_commands;
mod cli_live;
mod dashboard_api;
mod docs;
mod embed;
mod engineio;
mod exposure;
mod hostile;
mod http_framing;
mod isolation;
mod layers;
mod login_floods;
mod notif_broadcast;
mod notif_client;
mod notif_hostile;
mod notif_refusals;
mod notif_ws;
mod ops;
mod per_address;
mod pushalt_admin;
mod pushalt_bodies;
mod pushalt_channel;
mod pushalt_cors;
mod pushalt_emit;
mod pushalt_refusals;
mod pushalt_workspaces;
mod pusher_api;
mod pusher_channels;
mod pusher_connect;
mod pusher_limits;
mod pusher_users;
mod slow_consumer;
mod socketio;
mod startup;
mod store_backends;
mod timeouts;
mod ws_close;
mod ws_handshake;
