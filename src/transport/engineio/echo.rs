//! A bare Engine.IO echo: every message goes back to its sender as it came. What the official
//! protocol suite (`socketio/engine.io-protocol`) drives at `/engine.io/`; the conformance
//! example serves it, and the tests use it to exercise the transport without an upper layer.

use std::sync::Arc;

use super::{CloseReason, EioError, Flow, Handshake, Message, Protocol, Replies, Session};
use crate::core::{ChannelRules, ConnHandle, Realtime, Transport};

/// Opens echo sessions as connections of `app` in `realtime` (no quota).
pub struct Echo {
    realtime: Realtime,
    app: Arc<str>,
}

impl Echo {
    pub fn new(realtime: Realtime, app: impl Into<Arc<str>>) -> Self {
        Self { realtime, app: app.into() }
    }
}

impl Protocol for Echo {
    fn open(&self, _handshake: &Handshake<'_>) -> Result<Box<dyn Session>, EioError> {
        let conn = self.realtime.connect(&self.app, Transport::SocketIo, 0).map_err(|_| EioError::Forbidden)?;
        Ok(Box::new(EchoSession { realtime: self.realtime.clone(), conn }))
    }
}

struct EchoSession {
    realtime: Realtime,
    conn: ConnHandle,
}

/// An echo session joins no channel: no limits apply.
const NO_CHANNELS: ChannelRules = ChannelRules { max_members: 0, max_channels: 0, subscription_count: false };

impl Session for EchoSession {
    fn conn(&self) -> &ConnHandle {
        &self.conn
    }

    fn on_message(&mut self, message: Message<'_>, out: &mut Replies) -> Flow {
        match message {
            Message::Text(text) => out.message(text),
            Message::Binary(data) => out.binary(data),
        }
        Flow::Continue
    }

    fn on_close(&mut self, _reason: CloseReason) {
        self.realtime.disconnect(&self.conn, &NO_CHANNELS);
    }
}
