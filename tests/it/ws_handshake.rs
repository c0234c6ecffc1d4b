//! The WebSocket layer itself (RFC 6455), spoken byte by byte over a raw TCP socket: the
//! handshake, frames sent right behind the upgrade request, control frames and the close.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// RFC 6455 §1.3's example key and the accept value it must produce.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub(crate) fn upgrade_request(path: &str, version: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// A masked client frame.
pub(crate) fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = unmasked_frame(opcode, payload);
    out[1] |= 0x80;
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.splice(2..2, mask);
    for (i, b) in out[6..].iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    out
}

/// A frame as only a server may send it.
pub(crate) fn unmasked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![0x80 | opcode, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
            .await
            .expect("no bytes within 5 s")
            .unwrap();
        assert!(n > 0, "the server closed the socket");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The HTTP response head.
    pub(crate) async fn head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                self.buf.drain(..end + 4);
                return head;
            }
            self.fill().await;
        }
    }

    /// One server frame: (opcode, payload). Server frames are never masked.
    pub(crate) async fn frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames must not be masked");
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4),
                    127 => panic!("unexpectedly large frame"),
                    126 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0f;
                    assert_eq!(self.buf[0] & 0x80, 0x80, "FIN set");
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return (opcode, payload);
                }
            }
            self.fill().await;
        }
    }

    pub(crate) async fn event(&mut self) -> Value {
        let (opcode, payload) = self.frame().await;
        assert_eq!(opcode, 1, "a text frame");
        serde_json::from_slice(&payload).unwrap()
    }
}

pub(crate) async fn open(server: &TestServer, first_bytes: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(first_bytes).await.unwrap();
    Raw { stream, buf: Vec::new() }
}

#[tokio::test]
async fn frames_sent_right_behind_the_upgrade_request_are_read() {
    let server = spawn_server().await;
    let mut bytes = upgrade_request(&format!("/app/{APP_KEY}?protocol=7"), "13").into_bytes();
    bytes.extend(client_frame(1, br#"{"event":"pusher:ping","data":{}}"#));
    let mut raw = open(&server, &bytes).await;
    let head = raw.head().await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("sec-websocket-accept: {}", ACCEPT.to_ascii_lowercase())));
    assert_eq!(raw.event().await["event"], "pusher:connection_established");
    assert_eq!(raw.event().await["event"], "pusher:pong");
}

#[tokio::test]
async fn pings_are_answered_and_a_close_is_echoed() {
    let server = spawn_server().await;
    let mut raw = open(&server, upgrade_request(&format!("/app/{APP_KEY}?protocol=7"), "13").as_bytes()).await;
    assert!(raw.head().await.starts_with("HTTP/1.1 101"));
    assert_eq!(raw.event().await["event"], "pusher:connection_established");
    raw.stream.write_all(&client_frame(9, b"hello")).await.unwrap();
    assert_eq!(raw.frame().await, (10, b"hello".to_vec()), "a Pong with the Ping's payload");
    raw.stream.write_all(&client_frame(8, &1000u16.to_be_bytes())).await.unwrap();
    let (opcode, payload) = raw.frame().await;
    assert_eq!(opcode, 8);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    // Then the server ends the TCP connection.
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.stream.read(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn requests_that_are_not_version_13_upgrades_are_refused() {
    let server = spawn_server().await;
    let path = format!("/app/{APP_KEY}?protocol=7");
    for request in [
        upgrade_request(&path, "13").replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""),
        upgrade_request(&path, "13").replace("Upgrade: websocket\r\n", ""),
        upgrade_request(&path, "13").replace("Sec-WebSocket-Version: 13\r\n", ""),
    ] {
        let mut raw = open(&server, request.as_bytes()).await;
        let head = raw.head().await;
        assert!(head.starts_with("HTTP/1.1 400"), "{request:?} → {head}");
    }
    // RFC 6455 §4.4: another version is answered 426 with the one the server speaks, on both
    // WebSocket surfaces.
    let notif = format!("/ws?api_key={APP_KEY}");
    for path in [path.as_str(), notif.as_str()] {
        let mut raw = open(&server, upgrade_request(path, "8").as_bytes()).await;
        let head = raw.head().await.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 426"), "{path} → {head}");
        assert!(head.contains("\r\nsec-websocket-version: 13"), "{path} → {head}");
    }
    // The server is still fine.
    let mut ws = server.connect().await;
    ws.subscribe("after").await;
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = spawn_server().await;
    let path = format!("/app/{APP_KEY}?protocol=7");
    for (frame, code) in [
        (unmasked_frame(1, br#"{"event":"pusher:ping","data":{}}"#), 1002u16),
        (client_frame(1, &[b'"', 0xff, 0xfe, b'"']), 1007),
        (client_frame(3, b"reserved opcode"), 1002),
    ] {
        let mut raw = open(&server, upgrade_request(&path, "13").as_bytes()).await;
        assert!(raw.head().await.starts_with("HTTP/1.1 101"));
        assert_eq!(raw.event().await["event"], "pusher:connection_established");
        raw.stream.write_all(&frame).await.unwrap();
        let (opcode, payload) = raw.frame().await;
        assert_eq!(opcode, 8, "a close frame");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    }
    let mut ws = server.connect().await;
    ws.subscribe("after").await;
}
