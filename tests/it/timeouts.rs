//! SPEC §10 transport limits: silent sockets, half-sent headers and oversize headers are cut
//! off while other clients are served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use switchboard::config::Config;

use crate::support::{TestServer, spawn_with};

async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!("socket still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue, // e.g. a 408/431 response before the close
        }
    }
}

#[tokio::test]
async fn silent_and_half_header_sockets_are_closed() {
    assert_eq!(Config::default().server.handshake_timeout_ms, 10_000, "SPEC §10: headers within 10 s");
    let server = spawn_with(|c| c.server.handshake_timeout_ms = 700).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /app/key-1?protocol=7 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websock").await.unwrap();

    // Others are served meanwhile.
    let (status, _) = server.http().get("/health").await;
    assert_eq!(status, 200);
    let mut ws = server.connect().await;

    closed_within(&mut silent, Duration::from_secs(5)).await;
    closed_within(&mut half, Duration::from_secs(5)).await;
    ws.assert_alive().await;
}

/// Sends one request head of exactly `total` bytes on a new connection; returns the raw answer
/// (the server closes the connection after it).
async fn head_of(server: &TestServer, total: usize) -> String {
    let frame = |pad: &str| format!("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {pad}\r\n\r\n");
    let head = frame(&"a".repeat(total - frame("").len()));
    assert_eq!(head.len(), total);
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answered and closed")
        .expect("an answer, not a reset");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversize_headers_are_refused() {
    assert_eq!(Config::default().server.max_header_bytes, 16 * 1024, "SPEC §10: headers fit in 16 KB");
    let server = spawn_with(|_| {}).await;
    // A head of exactly 16 KB is served; one byte more, or far more, is answered 431.
    let fits = head_of(&server, 16 * 1024).await;
    assert!(fits.starts_with("HTTP/1.1 200"), "{fits}");
    for total in [16 * 1024 + 1, 20 * 1024, 40 * 1024] {
        let refused = head_of(&server, total).await;
        assert!(refused.starts_with("HTTP/1.1 431"), "{total} bytes: {refused}");
    }
    assert_eq!(server.http().get("/health").await.0, 200);
}

#[tokio::test]
async fn a_body_that_never_completes_is_answered_408_and_closed() {
    assert_eq!(Config::default().server.request_timeout_ms, 30_000);
    let server = spawn_with(|c| c.server.request_timeout_ms = 700).await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    // A route that needs its body to answer at all (the signed API refuses an unsigned request
    // before reading it).
    let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stalled.write_all(head.as_bytes()).await.unwrap();

    assert_eq!(server.http().get("/health").await.0, 200);
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut out))
        .await
        .expect("connection closed")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#"{"error":"#), "{text}");
    assert_eq!(server.http().get("/health").await.0, 200);
}
