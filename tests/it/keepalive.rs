//! Idle keep-alive connections: the server takes them back from hyper after a short idle spell
//! (server/conn.rs). The client must not notice: its next request on the same TCP connection,
//! pipelined requests and a WebSocket upgrade are served as before, and an idle connection is
//! still closed at the header timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{APP_KEY, spawn_server, spawn_with};

/// Well past the idle spell after which a connection leaves hyper (10 ms).
const PAST_PARKING: Duration = Duration::from_millis(900);

/// Reads `n` whole responses (each with a Content-Length) off `stream`: their status lines and
/// bodies.
async fn responses(stream: &mut TcpStream, n: usize) -> Vec<(String, String)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .expect("a content-length")
                .parse()
                .unwrap();
            if buf.len() >= head_end + 4 + length {
                let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + length]).into_owned();
                out.push((head.lines().next().unwrap_or_default().to_owned(), body));
                buf.drain(..head_end + 4 + length);
                continue;
            }
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk)).await.expect("answered in time").unwrap();
        assert!(n > 0, "closed with {} of the responses", out.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.is_empty(), "bytes past the responses: {:?}", String::from_utf8_lossy(&buf));
    out
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn an_idle_keep_alive_connection_serves_its_next_requests() {
    let server = spawn_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTH).await.unwrap();
    assert!(responses(&mut stream, 1).await[0].0.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(PAST_PARKING).await;
    // The next request after the pause, then two pipelined in one write after another pause.
    stream.write_all(HEALTH).await.unwrap();
    assert!(responses(&mut stream, 1).await[0].0.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(PAST_PARKING).await;
    let mut two = HEALTH.to_vec();
    two.extend_from_slice(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(&two).await.unwrap();
    let answers = responses(&mut stream, 2).await;
    assert!(answers[0].0.starts_with("HTTP/1.1 200"), "{answers:?}");
    assert!(answers[1].0.starts_with("HTTP/1.1 404"), "{answers:?}");
}

#[tokio::test]
async fn a_request_split_across_the_idle_spell_is_served_whole() {
    let server = spawn_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /hea").await.unwrap();
    tokio::time::sleep(PAST_PARKING).await;
    stream.write_all(b"lth HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(responses(&mut stream, 1).await[0].0.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_connection_upgrades_to_a_websocket() {
    let server = spawn_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTH).await.unwrap();
    responses(&mut stream, 1).await;
    tokio::time::sleep(PAST_PARKING).await;
    let upgrade = format!(
        "GET /app/{APP_KEY}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("pusher:connection_established") {
        let mut chunk = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk)).await.expect("established in time").unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101"), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn an_idle_connection_is_still_closed_at_the_header_timeout() {
    let server = spawn_with(|c| c.server.handshake_timeout_ms = 1_500).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTH).await.unwrap();
    responses(&mut stream, 1).await;
    let idle = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let after = idle.elapsed();
    assert!(after >= Duration::from_millis(1_300) && after < Duration::from_secs(3), "closed after {after:?}");
}
