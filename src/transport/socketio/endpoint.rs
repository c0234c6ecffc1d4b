//! Socket.IO as the upper protocol of an Engine.IO endpoint: each Engine.IO session is a core
//! connection of the app the setup admits it to, and runs a [`Session`].

use bytes::Bytes;
use tokio::time::Instant;

use super::codec;
use super::handshake::HandshakeInfo;
use super::server::Server;
use super::session::Session;
use crate::core::{ConnHandle, Disconnect, Transport};
use crate::transport::engineio::{self, CloseReason, EioError, Flow, Handshake, Message, Replies};

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
        let info = HandshakeInfo::new(handshake);
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
