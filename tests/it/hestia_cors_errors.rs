//! Answers on the chat paths given outside Hestia's router (the fallback 404, admission's 429
//! and 503, the deadline's 408) carry CORS `*` as the chat routes' own do, so a browser can
//! read them; other surfaces' answers do not.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Sends `raw` on a new connection and reads the answer until the server closes.
async fn exchange(server: &TestServer, raw: &str) -> String {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.expect("answered and closed").unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: https://chat.example\r\nConnection: close\r\n\r\n")
}

fn has_cors_any(answer: &str) -> bool {
    answer.lines().any(|l| l.eq_ignore_ascii_case("access-control-allow-origin: *"))
}

#[tokio::test]
async fn the_fallback_404_on_chat_paths_carries_cors() {
    let server = spawn_with(|_| {}).await;
    for path in
        ["/users/nonexistent-route", "/friends/a/b/c", "/groups/1/nothing", "/auth/nothing", "/uploads/avatars/a/b"]
    {
        let answer = exchange(&server, &get(path)).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        assert!(answer.contains(r#"{"error":"#), "{path}: {answer}");
        assert!(has_cors_any(&answer), "{path}: {answer}");
    }
    // Not a chat path: no CORS.
    let answer = exchange(&server, &get("/nothing-here")).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(!has_cors_any(&answer), "{answer}");
}

#[tokio::test]
async fn rate_refusals_on_chat_paths_carry_cors() {
    let server = spawn_with(|c| c.server.requests_per_ip_per_second = 2).await;
    let mut refused = None;
    for _ in 0..50 {
        let answer = exchange(&server, &get("/users/me")).await;
        if answer.starts_with("HTTP/1.1 429") {
            refused = Some(answer);
            break;
        }
    }
    let answer = refused.expect("never refused");
    assert!(answer.contains("Too many requests"), "{answer}");
    assert!(has_cors_any(&answer), "{answer}");
}

#[tokio::test]
async fn capacity_refusals_on_chat_paths_carry_cors() {
    let server = spawn_with(|c| c.server.max_connections = 1).await;
    // The one slot is held by an idle connection.
    let holder = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = exchange(&server, &get("/login")).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(has_cors_any(&answer), "{answer}");
    let answer = exchange(&server, &get("/apps/1/channels")).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(!has_cors_any(&answer), "{answer}");
    drop(holder);
}

#[tokio::test]
async fn the_deadline_408_on_chat_paths_carries_cors() {
    let server = spawn_with(|c| c.server.request_timeout_ms = 500).await;
    let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let answer = exchange(&server, head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(has_cors_any(&answer), "{answer}");
}
