//! The Engine.IO v4 packet codec: one packet per WebSocket message, or several joined with
//! `\x1e` in a long-polling body (binary ones as `b<base64>`), the open packet, and the frames
//! the server sends. Borrowed in, borrowed out: parsing never copies a text message.

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::transport::ws;

/// Separates packets in a long-polling body (the ASCII record separator).
pub const SEPARATOR: u8 = 0x1e;

/// A packet a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `1`: the client ends the session.
    Close,
    /// `2` with optional data (`2probe` on an upgrading WebSocket).
    Ping(&'a str),
    /// `3` with optional data.
    Pong(&'a str),
    /// `4…`: a text message for the upper layer.
    Message(&'a str),
    /// A binary message: a WebSocket binary frame, or `b<base64>` in a polling body.
    Binary(Cow<'a, [u8]>),
    /// `5`: the client completes an upgrade.
    Upgrade,
    /// `6`.
    Noop,
}

/// A packet that does not parse: the session ends ("parse error").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("binary packet is not valid base64")]
    BadBase64,
    #[error("payload is not UTF-8")]
    NotUtf8,
}

/// Parses one text packet (a WebSocket text message, or one piece of a polling body, where
/// `polling` allows the `b<base64>` form).
pub fn parse(text: &str, polling: bool) -> Result<Packet<'_>, PacketError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or(PacketError::Empty)?;
    let rest = chars.as_str();
    Ok(match kind {
        '1' => Packet::Close,
        '2' => Packet::Ping(rest),
        '3' => Packet::Pong(rest),
        '4' => Packet::Message(rest),
        '5' => Packet::Upgrade,
        '6' => Packet::Noop,
        'b' if polling => Packet::Binary(Cow::Owned(STANDARD.decode(rest).map_err(|_| PacketError::BadBase64)?)),
        _ => return Err(PacketError::UnknownType),
    })
}

/// Splits a long-polling body into its packets, each parsed; stops at the first bad one.
pub fn parse_payload(body: &[u8]) -> impl Iterator<Item = Result<Packet<'_>, PacketError>> {
    body.split(|b| *b == SEPARATOR)
        .map(|piece| std::str::from_utf8(piece).map_err(|_| PacketError::NotUtf8).and_then(|t| parse(t, true)))
}

/// The open packet: `0{"sid",…}` (`upgrades` is `["websocket"]` on polling, `[]` on WebSocket).
pub fn open(sid: &str, upgrades: bool, ping_interval: Duration, ping_timeout: Duration, max_payload: usize) -> String {
    // `sid` is ours (URL-safe base64): nothing to escape.
    format!(
        r#"0{{"sid":"{sid}","upgrades":[{}],"pingInterval":{},"pingTimeout":{},"maxPayload":{max_payload}}}"#,
        if upgrades { r#""websocket""# } else { "" },
        ping_interval.as_millis(),
        ping_timeout.as_millis(),
    )
}

/// The WebSocket frame of a message packet, `4` + `payload` (a text frame): what the upper
/// layer's fan-out encoder returns, shared by every subscriber on either transport.
pub fn message_frame(payload: &[u8]) -> Bytes {
    let mut packet = Vec::with_capacity(payload.len() + 1);
    packet.push(b'4');
    packet.extend_from_slice(payload);
    ws::text_frame(&packet)
}

/// The WebSocket frame of a binary message (a binary frame; `b<base64>` on polling).
pub fn binary_frame(payload: &[u8]) -> Bytes {
    ws::binary_frame(payload)
}

/// The frame of a bare control packet (`2`, `3probe`, `6`).
pub(crate) fn control_frame(packet: &'static str) -> Bytes {
    ws::text_frame(packet.as_bytes())
}

/// Appends the packets one outbox entry carries to a long-polling body: a text frame's payload
/// as it is, a binary frame's as `b<base64>`. An entry may hold several frames back to back (a
/// Socket.IO binary event and its attachments), each one packet. False (and nothing appended)
/// for bytes that are not such frames.
pub fn append_polling(body: &mut Vec<u8>, frames: &[u8]) -> bool {
    let mut rest = frames;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let Some((binary, payload, after)) = ws::split_frame(rest) else {
            return false;
        };
        parts.push((binary, payload));
        rest = after;
    }
    if parts.is_empty() {
        return false;
    }
    for (binary, payload) in parts {
        append_one(body, binary, payload);
    }
    true
}

fn append_one(body: &mut Vec<u8>, binary: bool, payload: &[u8]) {
    if !body.is_empty() {
        body.push(SEPARATOR);
    }
    if binary {
        body.push(b'b');
        let at = body.len();
        body.resize(at + base64::encoded_len(payload.len(), true).unwrap_or(0), 0);
        let written = STANDARD.encode_slice(payload, &mut body[at..]).unwrap_or(0);
        body.truncate(at + written);
    } else {
        body.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_packet_type() {
        assert_eq!(parse("1", false), Ok(Packet::Close));
        assert_eq!(parse("2probe", false), Ok(Packet::Ping("probe")));
        assert_eq!(parse("3", false), Ok(Packet::Pong("")));
        assert_eq!(parse("4héllo", false), Ok(Packet::Message("héllo")));
        assert_eq!(parse("5", false), Ok(Packet::Upgrade));
        assert_eq!(parse("6", false), Ok(Packet::Noop));
        assert_eq!(parse("bAQIDBA==", true), Ok(Packet::Binary(Cow::Owned(vec![1, 2, 3, 4]))));
        assert_eq!(parse("bAQIDBA==", false), Err(PacketError::UnknownType));
        assert_eq!(parse("b!!", true), Err(PacketError::BadBase64));
        assert_eq!(parse("", true), Err(PacketError::Empty));
        assert_eq!(parse("abc", true), Err(PacketError::UnknownType));
        assert_eq!(parse("0{}", true), Err(PacketError::UnknownType), "clients never send open");
        assert_eq!(parse("7", true), Err(PacketError::UnknownType));
    }

    #[test]
    fn splits_a_polling_body() {
        let got: Vec<_> = parse_payload(b"4test1\x1e4test2\x1ebAQIDBA==").collect();
        assert_eq!(
            got,
            vec![
                Ok(Packet::Message("test1")),
                Ok(Packet::Message("test2")),
                Ok(Packet::Binary(Cow::Owned(vec![1, 2, 3, 4])))
            ]
        );
        let bad: Vec<_> = parse_payload(b"4a\x1e\xff").collect();
        assert_eq!(bad[1], Err(PacketError::NotUtf8));
        let empty: Vec<_> = parse_payload(b"4a\x1e").collect();
        assert_eq!(empty[1], Err(PacketError::Empty));
    }

    #[test]
    fn open_packet_fields() {
        let open = open("abc", true, Duration::from_millis(300), Duration::from_millis(200), 1_000_000);
        let v: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
        assert!(open.starts_with('0'));
        assert_eq!(
            v,
            serde_json::json!({"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000})
        );
        let ws = super::open("abc", false, Duration::from_secs(25), Duration::from_secs(20), 5);
        assert!(ws.contains(r#""upgrades":[]"#), "{ws}");
    }

    #[test]
    fn polling_takes_packets_out_of_websocket_frames() {
        let mut body = Vec::new();
        assert!(append_polling(&mut body, &message_frame(b"hello")));
        assert!(append_polling(&mut body, &binary_frame(&[1, 2, 3, 4])));
        assert!(append_polling(&mut body, &control_frame("2")));
        let long = "x".repeat(70_000);
        assert!(append_polling(&mut body, &message_frame(long.as_bytes())));
        let expected = format!("4hello\x1ebAQIDBA==\x1e2\x1e4{long}");
        assert_eq!(body, expected.as_bytes());
        let mut joined = Vec::from(message_frame(b"51-[\"e\"]"));
        joined.extend_from_slice(&binary_frame(&[9]));
        let mut two = Vec::new();
        assert!(append_polling(&mut two, &joined), "frames back to back are one packet each");
        assert_eq!(two, b"451-[\"e\"]\x1ebCQ==");
        assert!(!append_polling(&mut body, b"\x89\x00"), "a ping frame is not a packet");
        assert!(!append_polling(&mut body, b"\x81\x05ab"), "a truncated frame is refused");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            for packet in parse_payload(&body) {
                let _ = packet;
            }
        }

        #[test]
        fn binary_round_trips_through_polling(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut body = Vec::new();
            prop_assert!(append_polling(&mut body, &binary_frame(&data)));
            let mut packets = parse_payload(&body);
            prop_assert_eq!(packets.next(), Some(Ok(Packet::Binary(Cow::Owned(data)))));
        }

        #[test]
        fn text_round_trips_through_polling(text in "[^\x1e]{0,300}") {
            let mut body = Vec::new();
            prop_assert!(append_polling(&mut body, &message_frame(text.as_bytes())));
            let mut packets = parse_payload(&body);
            prop_assert_eq!(packets.next(), Some(Ok(Packet::Message(&text))));
        }
    }
}
