//! Socket.IO v5 packets as text (`<type>[<attachments>-][<nsp>,][<ack id>][<JSON>]`), decoded
//! from and encoded into borrowed buffers: pure functions, no socket, no state. The Engine.IO
//! message prefix (`4`) and the binary attachments' frames belong to the layers around this one.
//!
//! Decoding is strict where the reference parser is and bounded where it is not: the attachment
//! count is read digit by digit and refused past [`MAX_ATTACHMENTS`] before anything is
//! allocated, ack ids stay within JavaScript's safe integers, namespaces within
//! [`MAX_NAMESPACE_LEN`], payloads within [`MAX_DEPTH`](super::MAX_DEPTH).

use std::borrow::Cow;

pub use super::limits::{DecodeError, MAX_ATTACHMENTS, MAX_NAMESPACE_LEN};
use super::payload;

/// Largest ack id: the client counts them in a JavaScript number (2^53 − 1).
pub const MAX_ACK_ID: AckId = (1 << 53) - 1;
/// The main namespace, which a packet without one addresses.
pub const MAIN_NAMESPACE: &str = "/";

/// An acknowledgement id, as the client numbered its request.
pub type AckId = u64;

/// Socket.IO v5 packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    fn of(byte: u8) -> Option<Self> {
        Some(match byte {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// A decoded client packet, borrowing the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// `/` unless the packet named another.
    pub nsp: &'a str,
    pub body: Body<'a>,
}

/// What a client packet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Join a namespace; `auth` is the JSON object the client passed, if any.
    Connect { auth: Option<&'a str> },
    /// Leave a namespace.
    Disconnect,
    /// An event: its arguments are JSON values joined by commas (`1,"2"`, or empty), with
    /// `attachments` binary frames to follow that the placeholders among them stand for.
    Event { name: Cow<'a, str>, args: &'a str, ack: Option<AckId>, attachments: usize },
    /// The answer to one of our events that asked for an ack.
    Ack { id: AckId, args: &'a str, attachments: usize },
}

impl Body<'_> {
    /// Binary frames the packet announced.
    pub fn attachments(&self) -> usize {
        match self {
            Self::Event { attachments, .. } | Self::Ack { attachments, .. } => *attachments,
            Self::Connect { .. } | Self::Disconnect => 0,
        }
    }
}

/// Decodes one client packet (the text of an Engine.IO message, after its `4`).
pub fn decode(text: &str) -> Result<Packet<'_>, DecodeError> {
    let bytes = text.as_bytes();
    let ty = PacketType::of(*bytes.first().ok_or(DecodeError::Empty)?).ok_or(DecodeError::UnknownType)?;
    let mut at = 1;
    let attachments = if ty.is_binary() { read_attachments(bytes, &mut at)? } else { 0 };
    let nsp = read_namespace(text, &mut at)?;
    let ack = match ty {
        PacketType::Event | PacketType::Ack | PacketType::BinaryEvent | PacketType::BinaryAck => {
            read_ack_id(bytes, &mut at)?
        }
        _ => None,
    };
    let rest = text.get(at..).unwrap_or_default();
    let body = match ty {
        PacketType::Connect if rest.is_empty() => Body::Connect { auth: None },
        PacketType::Connect => {
            payload::object(rest)?;
            Body::Connect { auth: Some(rest) }
        }
        PacketType::Disconnect if rest.is_empty() => Body::Disconnect,
        PacketType::Disconnect => return Err(DecodeError::InvalidPayload),
        PacketType::Event | PacketType::BinaryEvent => {
            let (name, args) = payload::event(rest, attachments)?;
            Body::Event { name, args, ack, attachments }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let id = ack.ok_or(DecodeError::BadAckId)?;
            Body::Ack { id, args: payload::ack(rest, attachments)?, attachments }
        }
        PacketType::ConnectError => return Err(DecodeError::NotFromClient),
    };
    Ok(Packet { nsp, body })
}

/// `<digits>-`, refused as soon as the number passes [`MAX_ATTACHMENTS`].
fn read_attachments(bytes: &[u8], at: &mut usize) -> Result<usize, DecodeError> {
    let start = *at;
    let mut count = 0usize;
    loop {
        match bytes.get(*at) {
            Some(d @ b'0'..=b'9') => {
                count = count * 10 + usize::from(d - b'0');
                if count > MAX_ATTACHMENTS {
                    return Err(DecodeError::TooManyAttachments);
                }
                *at += 1;
            }
            Some(b'-') if *at > start => {
                *at += 1;
                return Ok(count);
            }
            _ => return Err(DecodeError::BadAttachmentCount),
        }
    }
}

/// `/name,` (the comma may be missing at the end of the packet), else the main namespace.
fn read_namespace<'a>(text: &'a str, at: &mut usize) -> Result<&'a str, DecodeError> {
    let rest = text.get(*at..).unwrap_or_default();
    if !rest.starts_with('/') {
        return Ok(MAIN_NAMESPACE);
    }
    let (nsp, used) = match rest.find(',') {
        Some(comma) => (&rest[..comma], comma + 1),
        None => (rest, rest.len()),
    };
    if nsp.len() > MAX_NAMESPACE_LEN {
        return Err(DecodeError::NamespaceTooLong);
    }
    *at += used;
    Ok(nsp)
}

/// The digits before the payload, if any; at most [`MAX_ACK_ID`].
fn read_ack_id(bytes: &[u8], at: &mut usize) -> Result<Option<AckId>, DecodeError> {
    let start = *at;
    let mut id: AckId = 0;
    while let Some(d @ b'0'..=b'9') = bytes.get(*at) {
        id = id * 10 + AckId::from(d - b'0');
        if id > MAX_ACK_ID {
            return Err(DecodeError::BadAckId);
        }
        *at += 1;
    }
    Ok((*at > start).then_some(id))
}

/// Writes a packet's header: type, attachment count, namespace, ack id.
pub fn write_header(out: &mut Vec<u8>, ty: PacketType, attachments: usize, nsp: &str, ack: Option<AckId>) {
    out.push(b'0' + ty as u8);
    if ty.is_binary() {
        push_number(out, attachments as u64);
        out.push(b'-');
    }
    if nsp != MAIN_NAMESPACE {
        out.extend_from_slice(nsp.as_bytes());
        out.push(b',');
    }
    if let Some(id) = ack {
        push_number(out, id);
    }
}

/// The answer to a CONNECT: the socket's id in the namespace.
pub fn write_connect(out: &mut Vec<u8>, nsp: &str, sid: &str) {
    write_header(out, PacketType::Connect, 0, nsp, None);
    out.extend_from_slice(br#"{"sid":"#);
    push_json_str(out, sid);
    out.push(b'}');
}

/// A refused CONNECT; `data` is JSON (the reference server sends `{"message": …}`).
pub fn write_connect_error(out: &mut Vec<u8>, nsp: &str, data: &str) {
    write_header(out, PacketType::ConnectError, 0, nsp, None);
    out.extend_from_slice(data.as_bytes());
}

/// The server ends a socket's membership of a namespace.
pub fn write_disconnect(out: &mut Vec<u8>, nsp: &str) {
    write_header(out, PacketType::Disconnect, 0, nsp, None);
}

/// An event: `args` are JSON values joined by commas (or empty); with attachments it is a
/// BINARY_EVENT whose placeholders the caller wrote into `args`.
pub fn write_event(out: &mut Vec<u8>, nsp: &str, name: &str, args: &str, attachments: usize, ack: Option<AckId>) {
    let ty = if attachments > 0 { PacketType::BinaryEvent } else { PacketType::Event };
    write_header(out, ty, attachments, nsp, ack);
    out.push(b'[');
    push_json_str(out, name);
    if !args.is_empty() {
        out.push(b',');
        out.extend_from_slice(args.as_bytes());
    }
    out.push(b']');
}

/// The answer to a client's event that asked for an ack.
pub fn write_ack(out: &mut Vec<u8>, nsp: &str, id: AckId, args: &str, attachments: usize) {
    let ty = if attachments > 0 { PacketType::BinaryAck } else { PacketType::Ack };
    write_header(out, ty, attachments, nsp, Some(id));
    out.push(b'[');
    out.extend_from_slice(args.as_bytes());
    out.push(b']');
}

/// The placeholder that stands for attachment `num` among an event's arguments.
pub fn placeholder(num: usize) -> String {
    format!(r#"{{"_placeholder":true,"num":{num}}}"#)
}

/// `s` as a JSON string.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(nsp: &'a str, name: &'a str, args: &'a str, ack: Option<AckId>, n: usize) -> Packet<'a> {
        Packet { nsp, body: Body::Event { name: name.into(), args, ack, attachments: n } }
    }

    #[test]
    fn connects_with_and_without_namespace_and_auth() {
        assert_eq!(decode("0").unwrap(), Packet { nsp: "/", body: Body::Connect { auth: None } });
        assert_eq!(decode("0/custom,").unwrap(), Packet { nsp: "/custom", body: Body::Connect { auth: None } });
        assert_eq!(decode("0/custom").unwrap(), Packet { nsp: "/custom", body: Body::Connect { auth: None } });
        assert_eq!(
            decode(r#"0/custom,{"token":"abc"}"#).unwrap(),
            Packet { nsp: "/custom", body: Body::Connect { auth: Some(r#"{"token":"abc"}"#) } }
        );
        assert_eq!(
            decode(r#"0{"token":"123"}"#).unwrap(),
            Packet { nsp: "/", body: Body::Connect { auth: Some(r#"{"token":"123"}"#) } }
        );
        assert_eq!(decode("0[1]"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("0/a,\"x\""), Err(DecodeError::InvalidPayload));
    }

    #[test]
    fn disconnects() {
        assert_eq!(decode("1").unwrap(), Packet { nsp: "/", body: Body::Disconnect });
        assert_eq!(decode("1/custom,").unwrap(), Packet { nsp: "/custom", body: Body::Disconnect });
        assert_eq!(decode("1/custom").unwrap(), Packet { nsp: "/custom", body: Body::Disconnect });
        assert_eq!(decode("1[]"), Err(DecodeError::InvalidPayload));
    }

    #[test]
    fn events_and_acks() {
        assert_eq!(
            decode(r#"2["message",1,"2",{"3":[true]}]"#).unwrap(),
            event("/", "message", r#"1,"2",{"3":[true]}"#, None, 0)
        );
        assert_eq!(decode(r#"2456["m",1]"#).unwrap(), event("/", "m", "1", Some(456), 0));
        assert_eq!(decode(r#"2/admin,7["m"]"#).unwrap(), event("/admin", "m", "", Some(7), 0));
        assert_eq!(
            decode(r#"3456[1,"2"]"#).unwrap(),
            Packet { nsp: "/", body: Body::Ack { id: 456, args: r#"1,"2""#, attachments: 0 } }
        );
        assert_eq!(
            decode(r#"3/a,0[]"#).unwrap(),
            Packet { nsp: "/a", body: Body::Ack { id: 0, args: "", attachments: 0 } }
        );
    }

    #[test]
    fn binary_packets_announce_their_attachments() {
        let text = r#"52-789["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let p = decode(text).unwrap();
        assert_eq!(p.body.attachments(), 2);
        assert!(matches!(p.body, Body::Event { ack: Some(789), .. }));
        let ack = decode(r#"61-/x,3[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            ack,
            Packet { nsp: "/x", body: Body::Ack { id: 3, args: r#"{"_placeholder":true,"num":0}"#, attachments: 1 } }
        );
        assert!(decode(r#"50-["m"]"#).is_ok());
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType));
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType));
        assert_eq!(decode(r#"4{"message":"x"}"#), Err(DecodeError::NotFromClient));
        assert_eq!(decode("4abc"), Err(DecodeError::NotFromClient));
        assert_eq!(decode(r#"5["m"]"#), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode(r#"5-["m"]"#), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode("51"), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode(&format!("0/{},", "a".repeat(MAX_NAMESPACE_LEN))), Err(DecodeError::NamespaceTooLong));
        assert!(decode(&format!("0/{},", "a".repeat(MAX_NAMESPACE_LEN - 1))).is_ok());
    }

    #[test]
    fn the_suites_bad_packets_are_refused() {
        // socket.io-protocol's test suite: invalid payload format, invalid ack id.
        assert_eq!(decode("2{}"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode(r#"2abc["message-with-ack",1,"2",{"3":[false]}]"#), Err(DecodeError::BadJson));
        assert_eq!(decode(r#"2"message""#), Err(DecodeError::InvalidPayload));
    }

    #[test]
    fn ack_ids_stay_within_javascripts_safe_integers() {
        assert!(decode(&format!(r#"2{MAX_ACK_ID}["m"]"#)).is_ok());
        assert_eq!(decode(&format!(r#"2{}["m"]"#, MAX_ACK_ID + 1)), Err(DecodeError::BadAckId));
        assert_eq!(decode(&format!(r#"2{}["m"]"#, "9".repeat(10_000))), Err(DecodeError::BadAckId));
        assert_eq!(decode("3[1]"), Err(DecodeError::BadAckId));
        assert_eq!(decode("3-1[1]"), Err(DecodeError::BadAckId));
    }

    #[test]
    fn a_placeholder_bomb_is_refused_from_its_header() {
        let bomb = format!("51000000-[\"m\",{}]", placeholder(0));
        assert_eq!(decode(&bomb), Err(DecodeError::TooManyAttachments));
        let huge = format!("5{}-[\"m\"]", "9".repeat(100_000));
        assert_eq!(decode(&huge), Err(DecodeError::TooManyAttachments));
        assert_eq!(decode(&format!("5{}-[\"m\"]", MAX_ATTACHMENTS + 1)), Err(DecodeError::TooManyAttachments));
    }

    #[test]
    fn attachment_counts_must_match_the_placeholders() {
        assert_eq!(decode(r#"52-["m",{"_placeholder":true,"num":0}]"#), Err(DecodeError::AttachmentMismatch));
        assert_eq!(decode(r#"51-["m",{"_placeholder":true,"num":1}]"#), Err(DecodeError::AttachmentMismatch));
        assert_eq!(decode(r#"2["m",{"_placeholder":true,"num":0}]"#), Err(DecodeError::AttachmentMismatch));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("2[\"m\",{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
    }

    fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_as_the_reference_server() {
        assert_eq!(encoded(|o| write_connect(o, "/", "abc")), r#"0{"sid":"abc"}"#);
        assert_eq!(encoded(|o| write_connect(o, "/custom", "a\"b")), r#"0/custom,{"sid":"a\"b"}"#);
        assert_eq!(
            encoded(|o| write_connect_error(o, "/random", r#"{"message":"Invalid namespace"}"#)),
            r#"4/random,{"message":"Invalid namespace"}"#
        );
        assert_eq!(encoded(|o| write_disconnect(o, "/")), "1");
        assert_eq!(encoded(|o| write_disconnect(o, "/custom")), "1/custom,");
        assert_eq!(encoded(|o| write_event(o, "/", "auth", "{}", 0, None)), r#"2["auth",{}]"#);
        assert_eq!(encoded(|o| write_event(o, "/", "e\"", "", 0, Some(12))), r#"212["e\""]"#);
        let two = format!("{},{}", placeholder(0), placeholder(1));
        assert_eq!(
            encoded(|o| write_event(o, "/", "message-back", &two, 2, None)),
            r#"52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(encoded(|o| write_ack(o, "/", 456, r#"1,"2""#, 0)), r#"3456[1,"2"]"#);
        assert_eq!(encoded(|o| write_ack(o, "/c", 789, &two, 2)), format!("62-/c,789[{two}]"));
        assert_eq!(encoded(|o| write_ack(o, "/", 0, "", 0)), "30[]");
    }

    #[test]
    fn what_we_encode_we_decode() {
        let text = encoded(|o| write_event(o, "/n", "a,b", r#"1,{"x":[2]}"#, 0, Some(9)));
        assert_eq!(decode(&text).unwrap(), event("/n", "a,b", r#"1,{"x":[2]}"#, Some(9), 0));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(s in "[0-6]?[0-9-]{0,3}(/[a-z,]{0,4})?[0-9]{0,3}.{0,32}") {
            let _ = decode(&s);
        }

        #[test]
        fn decode_never_panics_on_anything(s in ".{0,64}") {
            let _ = decode(&s);
        }
    }
}
