//! Transports: the connection loops surfaces share. A surface supplies a [`ws::Session`] (its
//! protocol); the loop owns the socket, the outbox and the timers.

pub mod ws;
