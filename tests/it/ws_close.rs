//! The end of a WebSocket (issue 14, item 6; RFC 6455 §7.1.1): once the closing handshake is
//! complete the server closes TCP at once, after a protocol error (1002, 1007, 1009) as after a
//! refusal (4001); a client that never answers the close is cut after a short wait.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;
use crate::ws_handshake::{client_frame, open, unmasked_frame, upgrade_request};

/// A masked frame of any length (the handshake module's helper takes < 126 bytes).
fn long_client_frame(payload_len: usize) -> Vec<u8> {
    let mut out = vec![0x81, 0x80 | 127];
    out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend(std::iter::repeat_n(b'a', payload_len));
    out
}

/// Reads until the server ends TCP; how long that took.
async fn until_eof(stream: &mut tokio::net::TcpStream) -> Duration {
    let started = Instant::now();
    let mut rest = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut rest)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
}

#[tokio::test]
async fn after_a_protocol_error_and_the_clients_close_tcp_ends_at_once() {
    let server = spawn_server().await;
    let path = format!("/app/{APP_KEY}?protocol=7");
    for (frame, code) in [
        (unmasked_frame(1, br#"{"event":"pusher:ping","data":{}}"#), 1002u16),
        (client_frame(1, &[b'"', 0xff, 0xfe, b'"']), 1007),
        (long_client_frame(20 * 1024), 1009),
    ] {
        let mut raw = open(&server, upgrade_request(&path, "13").as_bytes()).await;
        assert!(raw.head().await.starts_with("HTTP/1.1 101"));
        assert_eq!(raw.event().await["event"], "pusher:connection_established");
        raw.stream.write_all(&frame).await.unwrap();
        let (opcode, payload) = raw.frame().await;
        assert_eq!((opcode, u16::from_be_bytes([payload[0], payload[1]])), (8, code));
        // The client answers the close, as RFC 6455 asks; the server must not linger (it held
        // the connection 5 s here).
        let _ = raw.stream.write_all(&client_frame(8, &code.to_be_bytes())).await;
        let took = until_eof(&mut raw.stream).await;
        assert!(took < Duration::from_secs(1), "close {code}: TCP ended after {took:?}");
    }
    server.connect().await.assert_alive().await;
}

#[tokio::test]
async fn after_a_refusal_tcp_ends_with_the_handshake_or_a_short_wait() {
    let server = spawn_server().await;
    let path = "/app/no-such-key?protocol=7";
    // Answered: at once.
    let mut raw = open(&server, upgrade_request(path, "13").as_bytes()).await;
    assert!(raw.head().await.starts_with("HTTP/1.1 101"));
    assert_eq!(raw.event().await["data"]["code"], 4001);
    assert_eq!(raw.frame().await.0, 8);
    raw.stream.write_all(&client_frame(8, &4001u16.to_be_bytes())).await.unwrap();
    let took = until_eof(&mut raw.stream).await;
    assert!(took < Duration::from_secs(1), "answered close: TCP ended after {took:?}");
    // Never answered: cut after the short wait, not held.
    let mut raw = open(&server, upgrade_request(path, "13").as_bytes()).await;
    assert!(raw.head().await.starts_with("HTTP/1.1 101"));
    assert_eq!(raw.event().await["data"]["code"], 4001);
    assert_eq!(raw.frame().await.0, 8);
    let took = until_eof(&mut raw.stream).await;
    assert!(took < Duration::from_secs(5), "unanswered close: TCP ended after {took:?}");
}
