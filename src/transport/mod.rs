//! Transports: the connection loops surfaces share. A surface supplies a [`ws::Session`] (its
//! protocol); the loop owns the upgrade, the reads, the timers and the close, and the core's
//! outbox and flush queues do the writing.

pub mod engineio;
pub mod server_io;
pub mod socketio;
pub mod ws;
