//! Socket.IO packets as the frames a connection's outbox takes: an Engine.IO message (`4` and
//! the packet) in a WebSocket text frame, an attachment in a binary frame. The WebSocket loop
//! writes them as they are; a polling session takes their payloads.

use bytes::Bytes;

use crate::transport::ws;

/// The Engine.IO `message` packet type.
const MESSAGE: &[u8] = b"4";

/// An Engine.IO message carrying the Socket.IO `packet`.
pub fn message(packet: &[u8]) -> Bytes {
    ws::text_frame_of(&[MESSAGE, packet])
}

/// A binary attachment.
pub fn binary(data: &[u8]) -> Bytes {
    ws::binary_frame(data)
}

/// What a frame carries (the Engine.IO packet of a text frame, the bytes of a binary one).
#[cfg(test)]
pub fn payload(frame: &Bytes) -> Bytes {
    ws::frame_payload(frame)
}
