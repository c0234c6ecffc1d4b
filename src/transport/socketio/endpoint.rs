//! Socket.IO as the upper protocol of an Engine.IO endpoint: each Engine.IO session is a core
//! connection of the app the setup admits it to, and runs a [`Session`].

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::codec;
use super::server::Server;
use super::session::Session;
use crate::core::{ChannelRules, ConnHandle, Disconnect, Transport};
use crate::transport::engineio::{self, CloseReason, EioError, Flow, Handshake, Message, Replies};

/// The core app an Engine.IO session joins, with the limits that apply to it.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub app: Arc<str>,
    pub rules: ChannelRules,
    /// The app's connection quota (0: none).
    pub max_connections: u64,
}

/// What a connect handler may want from the Engine.IO handshake.
#[derive(Debug, Clone, Default)]
pub struct HandshakeInfo {
    /// The handshake's query pairs, decoded (e.g. a `token` some clients send there), but
    /// Engine.IO's own ([`ENGINE_PARAMS`]): kept for the connection's life, so only what a
    /// handler may want.
    pub query: Vec<(String, String)>,
    /// The client's address, when known.
    pub client: Option<IpAddr>,
    /// The handshake's `Origin` header (`None`: none was sent), for a surface whose apps
    /// each allow their own origins.
    pub origin: Option<String>,
}

/// Query parameters Engine.IO itself uses (`t` and `j` by old clients and cache busting).
pub const ENGINE_PARAMS: [&str; 6] = ["EIO", "transport", "sid", "t", "j", "b64"];

impl HandshakeInfo {
    /// The first value of the query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl engineio::Protocol for Server {
    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        self.origin_allowed(origin)
    }

    fn open(&self, handshake: &Handshake<'_>) -> Result<Box<dyn engineio::Session>, EioError> {
        let admitted = self.admit(handshake)?;
        let conn = self
            .realtime
            .connect(&admitted.app, Transport::SocketIo, admitted.max_connections)
            .map_err(|_| EioError::Forbidden)?;
        let origin =
            handshake.headers.get(axum::http::header::ORIGIN).map(|o| o.to_str().unwrap_or_default().to_owned());
        let query = kept_query(handshake.query);
        let info = HandshakeInfo { query, client: handshake.client, origin };
        let server = self.self_arc().ok_or(EioError::BadRequest)?;
        Ok(Box::new(Session::new(server, conn, admitted.rules, info)))
    }
}

impl engineio::Session for Session {
    fn conn(&self) -> &ConnHandle {
        Session::conn(self)
    }

    fn on_message(&mut self, message: Message<'_>, _out: &mut Replies) -> Flow {
        // Answers go through the connection's outbox (as every emit does), so they stay in
        // order with what handlers send from other tasks.
        let res = match message {
            Message::Text(text) => self.on_text(text),
            Message::Binary(data) => self.on_binary(Bytes::copy_from_slice(data)),
        };
        match res {
            Ok(()) => Flow::Continue,
            Err(close) => {
                tracing::debug!(socket_id = %self.conn().socket_id, reason = %close, "socket.io connection closed");
                Flow::Close
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        Session::deadline(self)
    }

    fn on_timer(&mut self, now: Instant, _out: &mut Replies) -> Flow {
        match Session::on_timer(self, now) {
            Ok(()) => Flow::Continue,
            Err(close) => {
                tracing::debug!(socket_id = %self.conn().socket_id, reason = %close, "socket.io connection closed");
                Flow::Close
            }
        }
    }

    fn last_words(&self, reason: Disconnect) -> Option<Bytes> {
        // A server that goes away or a client that fell behind: no DISCONNECT, so the client
        // sees a transport close and reconnects by itself. An app disabled or a user ended:
        // DISCONNECT (the first namespace's; one packet fits here), which the client library
        // does not reconnect after.
        match reason {
            Disconnect::Shutdown | Disconnect::SlowConsumer => None,
            Disconnect::AppDisabled | Disconnect::Terminated => {
                let nsp = self.namespaces().next()?;
                let mut packet = Vec::new();
                codec::write_disconnect(&mut packet, nsp);
                Some(packet.into())
            }
        }
    }

    fn on_close(&mut self, _reason: CloseReason) {
        self.finish();
        let shared = self.shared();
        shared.realtime.disconnect(&shared.conn, &shared.rules());
    }
}

/// The most of its handshake's own query a connection keeps for its life, in bytes of keys and
/// values: enough for a token and a few settings, while a client cannot make every idle
/// connection hold its whole 16 KB header block.
pub const MAX_KEPT_QUERY_BYTES: usize = 2048;

/// The handshake's own query pairs (not Engine.IO's), in order, while they fit
/// [`MAX_KEPT_QUERY_BYTES`]; a pair that would pass it and every later one are dropped.
fn kept_query(query: &[(String, String)]) -> Vec<(String, String)> {
    let mut bytes = 0;
    query
        .iter()
        .filter(|(k, _)| !ENGINE_PARAMS.contains(&k.as_str()))
        .take_while(|(k, v)| {
            bytes += k.len() + v.len();
            bytes <= MAX_KEPT_QUERY_BYTES
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{MAX_KEPT_QUERY_BYTES, kept_query};

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn a_connection_keeps_its_own_query_up_to_a_bound() {
        let query = vec![pair("EIO", "4"), pair("token", "t"), pair("transport", "polling"), pair("room", "a")];
        assert_eq!(kept_query(&query), vec![pair("token", "t"), pair("room", "a")]);
        let big = "x".repeat(MAX_KEPT_QUERY_BYTES / 2);
        let query = vec![pair("a", &big), pair("b", &big), pair("c", "small")];
        assert_eq!(kept_query(&query), vec![pair("a", &big)], "the pair past the bound and every later one go");
    }
}
