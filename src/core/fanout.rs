//! Fan-out: one event becomes at most one frame per transport, shared (`Bytes`) by every
//! subscriber of that transport, queued with `try_send`. Nothing here waits or allocates per
//! subscriber; a subscriber whose outbox is full is marked slow and closes itself.

use std::sync::OnceLock;

use bytes::Bytes;

use super::Event;
use super::conn::{ConnHandle, Transport};
use super::registry::Channel;

/// Turns an event into one transport's frame. Registered by each surface.
pub type Encoder = fn(&Event) -> Bytes;

/// One encoder slot per transport.
#[derive(Default)]
pub(crate) struct Encoders([OnceLock<Encoder>; Transport::COUNT]);

impl Encoders {
    pub fn register(&self, transport: Transport, encoder: Encoder) {
        let _ = self.0[transport as usize].set(encoder);
    }

    fn get(&self, transport: Transport) -> Option<Encoder> {
        self.0[transport as usize].get().copied()
    }

    /// The frame of `event` for one connection (for messages addressed to a single one).
    pub fn encode_for(&self, conn: &ConnHandle, event: &Event) -> Option<Bytes> {
        self.get(conn.transport).map(|encode| encode(event))
    }
}

/// Queues `event` for every subscriber of `channel` but `event.except`; returns how many got it.
pub(crate) fn fan_out(encoders: &Encoders, channel: &Channel, event: &Event) -> usize {
    let mut frames: [Option<Bytes>; Transport::COUNT] = Default::default();
    let mut delivered = 0;
    for (socket_id, sub) in &channel.subscribers {
        if event.except == Some(*socket_id) || !sub.conn.wants(event) {
            continue;
        }
        let t = sub.conn.transport;
        let frame = match &frames[t as usize] {
            Some(frame) => frame.clone(),
            None => {
                let Some(encode) = encoders.get(t) else {
                    continue;
                };
                let frame = encode(event);
                frames[t as usize] = Some(frame.clone());
                frame
            }
        };
        if sub.conn.try_send(frame) {
            delivered += 1;
        }
    }
    delivered
}
