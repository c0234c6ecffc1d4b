//! The Socket.IO v5 (Engine.IO v4) side of the subscribers: the two servers it can measure (the
//! `--flavour`), the setup every subscriber goes through whatever its transport (open, CONNECT to
//! `/`, join, acknowledgement), and the per-packet classification of the receive loops.
//!
//! Setup may allocate and parse JSON; the receive path may not: a delivery is recognised by the
//! byte prefix of its event (`42["message",` for Node, `42["workspace:<n>:<channel>:message",`
//! for Switchboard) and its stamp found by a substring search, in the buffer it was read into.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::tally::{Seen, parse_stamp, shorten};

/// Engine.IO v4 separates the packets of one polling payload with this byte.
pub const SEPARATOR: u8 = 0x1e;
/// Engine.IO pong (the answer to the server's ping `2`).
pub const PONG: &[u8] = b"3";
/// Socket.IO CONNECT to the main namespace `/`, as an Engine.IO message.
const CONNECT: &[u8] = b"40";
/// The acknowledgement id of the Node flavour's `join`.
const JOIN_ACK: &[u8] = b"431";
const JOINED: &[u8] = br#"42["joined""#;
const ERROR_EVENT: &[u8] = br#"42["error""#;

/// The transport a Socket.IO subscriber uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// `?EIO=4&transport=websocket` straight away (no polling first, no upgrade).
    Websocket,
    /// HTTP long-polling, `?EIO=4&transport=polling`, never upgraded.
    Polling,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

/// Which Socket.IO server is measured: what path it serves, how a socket joins, how its
/// deliveries are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// Switchboard's Push-Alt surface: a token from `POST /api/channel/auth`, `join_channel`,
    /// `joined`; events `workspace:<n>:<channel>:message`; path `/ws/`.
    Switchboard,
    /// bench/node-socketio/server.mjs: `join` {room} acknowledged; events `message`; path
    /// `/socket.io/`.
    Node,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Switchboard => "switchboard",
            Flavour::Node => "node",
        }
    }

    pub fn default_path(self) -> &'static str {
        match self {
            Flavour::Switchboard => "/ws/",
            Flavour::Node => "/socket.io/",
        }
    }
}

/// What every Socket.IO subscriber of a run needs: fixed before the ramp.
#[derive(Debug)]
pub struct Target {
    pub flavour: Flavour,
    pub transport: Transport,
    /// `PATH?EIO=4&transport=…`, the query every request of a session starts with.
    pub base: String,
    /// The join packet, an Engine.IO message.
    join: Vec<u8>,
    /// What a delivery starts with: `42["<event>",`.
    prefix: Vec<u8>,
    /// The event deliveries are named (for the report).
    pub listen_name: String,
}

impl Target {
    /// The Node flavour: `join` {room: channel} with acknowledgement id 1, deliveries `message`.
    pub fn node(path: &str, transport: Transport, channel: &str) -> Self {
        let join = format!("421{}", json!(["join", {"room": channel}]));
        Self::new(Flavour::Node, path, transport, join, "message")
    }

    /// The Switchboard flavour, once `/api/channel/auth` gave the token and the event name.
    pub fn switchboard(path: &str, transport: Transport, channel: &str, token: &str, listen_name: &str) -> Self {
        let join = format!("42{}", json!(["join_channel", {"token": token, "channel_name": channel}]));
        Self::new(Flavour::Switchboard, path, transport, join, listen_name)
    }

    fn new(flavour: Flavour, path: &str, transport: Transport, join: String, event: &str) -> Self {
        let sep = if path.contains('?') { '&' } else { '?' };
        Self {
            flavour,
            transport,
            base: format!("{path}{sep}EIO=4&transport={}", transport.name()),
            join: join.into_bytes(),
            prefix: format!("42{},", json!([event]).to_string().trim_end_matches(']')).into_bytes(),
            listen_name: event.to_owned(),
        }
    }

    /// What a text packet is to a joined subscriber (the hot path: no allocation but for notes).
    #[inline]
    pub fn classify(&self, packet: &[u8]) -> Seen {
        if let Some(rest) = packet.strip_prefix(self.prefix.as_slice()) {
            return match parse_stamp(rest) {
                Some((seq, sent)) => Seen::Delivery(seq, sent),
                None => Seen::Note(format!("unstamped delivery {}", shorten(packet))),
            };
        }
        match packet {
            b"2" => Seen::Reply(PONG),
            b"1" => Seen::End("Engine.IO close from the server".to_owned()),
            [b'4', b'1', ..] => Seen::End(format!("Socket.IO DISCONNECT {}", shorten(packet))),
            p if p.starts_with(ERROR_EVENT) || p.starts_with(b"44") => Seen::Note(format!("Socket.IO {}", shorten(p))),
            _ => Seen::Nothing,
        }
    }
}

/// A subscriber's way from the Engine.IO open packet to a joined channel, fed one packet at a
/// time by either transport.
pub struct Handshake<'t> {
    target: &'t Target,
    /// The Engine.IO session id, from the open packet.
    pub sid: Option<String>,
    connected: bool,
}

impl<'t> Handshake<'t> {
    pub fn new(target: &'t Target) -> Self {
        Self { target, sid: None, connected: false }
    }

    /// Takes one packet; pushes what must be sent in answer to `out`. `Ok(true)` once joined.
    pub fn on_packet(&mut self, packet: &[u8], out: &mut Vec<Vec<u8>>) -> anyhow::Result<bool> {
        let shown = || shorten(packet);
        match packet {
            [b'0', open @ ..] => {
                let v: Value = serde_json::from_slice(open).with_context(|| format!("open packet {}", shown()))?;
                let sid = v["sid"].as_str().with_context(|| format!("open packet without sid: {}", shown()))?;
                self.sid = Some(sid.to_owned());
                out.push(CONNECT.to_vec());
            }
            b"2" => out.push(PONG.to_vec()),
            b"1" => bail!("the server closed the session during setup"),
            [b'4', b'0', ..] if !self.connected => {
                self.connected = true;
                out.push(self.target.join.clone());
            }
            [b'4', b'4', ..] => bail!("CONNECT refused: {}", shown()),
            [b'4', b'1', ..] => bail!("disconnected during setup: {}", shown()),
            p if self.target.flavour == Flavour::Node && p.starts_with(JOIN_ACK) => return Ok(true),
            p if self.target.flavour == Flavour::Switchboard && p.starts_with(JOINED) => return Ok(true),
            p if p.starts_with(ERROR_EVENT) => bail!("join refused: {}", shown()),
            _ => {}
        }
        Ok(false)
    }
}

/// The packets of one polling payload.
pub fn packets(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|b| *b == SEPARATOR).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h: &mut Handshake<'_>, packet: &[u8]) -> (anyhow::Result<bool>, Vec<String>) {
        let mut out = Vec::new();
        let r = h.on_packet(packet, &mut out);
        (r, out.into_iter().map(|p| String::from_utf8(p).unwrap()).collect())
    }

    #[test]
    fn node_setup_connects_joins_and_waits_for_the_ack() {
        let t = Target::node("/socket.io/", Transport::Websocket, "bench");
        assert_eq!(t.base, "/socket.io/?EIO=4&transport=websocket");
        let mut h = Handshake::new(&t);
        let (r, out) = run(&mut h, br#"0{"sid":"abc-_1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#);
        assert!(!r.unwrap());
        assert_eq!((h.sid.as_deref(), out), (Some("abc-_1"), vec!["40".to_owned()]));
        let (r, out) = run(&mut h, br#"40{"sid":"xyz"}"#);
        assert!(!r.unwrap());
        assert_eq!(out, vec![r#"421["join",{"room":"bench"}]"#.to_owned()]);
        assert_eq!(run(&mut h, b"2").1, vec!["3".to_owned()]);
        assert!(!run(&mut h, br#"42["other",1]"#).0.unwrap());
        assert!(run(&mut h, br#"431[{"ok":true}]"#).0.unwrap());
    }

    #[test]
    fn switchboard_setup_joins_with_the_token_and_reports_refusals() {
        let t = Target::switchboard("/ws/", Transport::Polling, "orders", "t0k", "workspace:7:orders:message");
        assert_eq!(t.base, "/ws/?EIO=4&transport=polling");
        let mut h = Handshake::new(&t);
        run(&mut h, br#"0{"sid":"s"}"#).0.unwrap();
        let (_, out) = run(&mut h, b"40");
        assert_eq!(out, vec![r#"42["join_channel",{"channel_name":"orders","token":"t0k"}]"#.to_owned()]);
        assert!(run(&mut h, br#"42["joined",{"message":"Connected to orders in workspace 7"}]"#).0.unwrap());

        let mut h = Handshake::new(&t);
        let err = run(&mut h, br#"42["error",{"message":"Invalid token"}]"#).0.unwrap_err();
        assert!(err.to_string().contains("Invalid token"), "{err}");
        let err = run(&mut Handshake::new(&t), br#"44{"message":"Invalid namespace"}"#).0.unwrap_err();
        assert!(err.to_string().contains("Invalid namespace"), "{err}");
        assert!(run(&mut Handshake::new(&t), b"0not json").0.is_err());
        assert!(run(&mut Handshake::new(&t), br#"0{"upgrades":[]}"#).0.is_err());
        assert!(run(&mut Handshake::new(&t), b"1").0.is_err());
    }

    #[test]
    fn deliveries_are_told_by_their_event_prefix() {
        let t = Target::switchboard("/ws/", Transport::Websocket, "bench", "t", "workspace:1:bench:message");
        let seen = |p: &[u8]| t.classify(p);
        assert!(matches!(seen(br#"42["workspace:1:bench:message","~SB7.99~"]"#), Seen::Delivery(7, 99)));
        assert!(matches!(seen(br#"42["workspace:1:bench:message",{"x":"~SB8.5~xx"}]"#), Seen::Delivery(8, 5)));
        // Another channel's or another event's stamp is not this subscriber's delivery.
        assert!(matches!(seen(br#"42["workspace:1:other:message","~SB7.99~"]"#), Seen::Nothing));
        assert!(matches!(seen(br#"42["workspace:1:bench:message2","~SB7.99~"]"#), Seen::Nothing));
        assert!(matches!(seen(br#"42["workspace:1:bench:message","no stamp"]"#), Seen::Note(_)));
        assert!(matches!(seen(b"2"), Seen::Reply(b"3")));
        assert!(matches!(seen(b"1"), Seen::End(_)));
        assert!(matches!(seen(b"41"), Seen::End(_)));
        assert!(matches!(seen(br#"42["error",{"message":"rate"}]"#), Seen::Note(_)));
        assert!(matches!(seen(b"6"), Seen::Nothing));
        let node = Target::node("/socket.io/", Transport::Polling, "bench");
        assert!(matches!(node.classify(br#"42["message","~SB1.2~"]"#), Seen::Delivery(1, 2)));
    }

    #[test]
    fn payloads_split_on_the_record_separator() {
        let body = b"2\x1e42[\"message\",\"~SB1.2~\"]\x1e\x1e6";
        let all: Vec<&[u8]> = packets(body).collect();
        assert_eq!(all, vec![&b"2"[..], &br#"42["message","~SB1.2~"]"#[..], &b"6"[..]]);
        assert_eq!(packets(b"").count(), 0);
    }
}
