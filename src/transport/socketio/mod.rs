//! Socket.IO v5 on top of Engine.IO: packets, namespaces, acks and binary attachments. A
//! Socket.IO socket is a core connection ([`crate::core::ConnHandle`] with
//! [`crate::core::Transport::SocketIo`]); rooms are core channels. No registry, adapter or
//! cluster path of its own lives here.

pub mod codec;
mod payload;

pub use payload::MAX_DEPTH;
