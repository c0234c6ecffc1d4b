//! Socket.IO v5 on top of Engine.IO: packets, namespaces, acks and binary attachments. A
//! Socket.IO connection is a core connection ([`crate::core::ConnHandle`] with
//! [`crate::core::Transport::SocketIo`]); rooms are core channels, so subscriptions, limits,
//! slow-consumer eviction and the cluster path are the core's. No registry, adapter or
//! cluster path of its own lives here.
//!
//! A program describes its namespaces with [`SocketIo`] and [`Namespace`] and binds them to the
//! core ([`SocketIo::bind`]); the bound [`Server`] is the Engine.IO endpoint's protocol
//! (`engineio::Endpoint::new(options, server, shutdown)`), which runs a [`Session`] per
//! connection, calling the handlers with [`Socket`] handles.

mod args;
pub mod broadcast;
pub mod codec;
mod endpoint;
mod handshake;
mod limits;
mod namespace;
mod payload;
mod server;
mod session;
mod socket;

pub use args::{Args, ArgsError};
pub use broadcast::Naming;
pub use handshake::{ENGINE_PARAMS, HandshakeInfo};
pub use limits::MAX_DEPTH;
pub use namespace::{ConnectRefusal, Message, Namespace};
pub use server::{
    Admit, Admitted, DEFAULT_APP, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTACHMENT_BYTES, DEFAULT_RULES, OriginCheck,
    Server, SetupError, SocketIo,
};
pub use session::{Close, Flow, Session};
pub use socket::{
    AckCallback, AckError, AckResult, AckSender, DisconnectReason, EmitError, JoinError, MAX_PENDING_ACKS, Socket,
};
