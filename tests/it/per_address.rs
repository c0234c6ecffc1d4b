//! SPEC §10's per-address limits: open connections and request rate, each answered 429 in
//! JSON, while the address's existing connections keep working.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::support::ws::WAIT;
use crate::support::*;

/// A one-shot `GET /health` on a new TCP connection: the raw response.
async fn fresh_get(server: &TestServer) -> String {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("answered and closed").unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_over_the_per_address_limit_get_429_until_one_closes() {
    let server = spawn_with(|c| c.server.max_connections_per_ip = 2).await;
    let first = server.connect().await;
    let mut second = server.connect().await;

    let refused = fresh_get(&server).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains(r#"{"error":"Too many connections from this address"}"#), "{refused}");
    match connect_async(server.ws_url(APP_KEY)).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("a third WebSocket was let in: {:?}", other.map(|_| ())),
    }
    second.assert_alive().await;

    // A WebSocket holds its slot past the upgrade, and gives it back when it closes.
    first.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = fresh_get(&server).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the closed socket's slot never came back: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.assert_alive().await;
}

#[tokio::test]
async fn requests_over_the_per_address_rate_get_429_with_retry_after() {
    const RATE: u32 = 3;
    let server = spawn_with(|c| c.server.requests_per_ip_per_second = RATE).await;
    let http = server.http();
    let started = std::time::Instant::now();
    let mut admitted = 0;
    let (headers, body) = loop {
        assert!(admitted <= 10 * RATE as usize, "never refused after {admitted} requests");
        let (status, headers, body) = http.request_full(hyper::Method::GET, "/notifmoo.js", b"", &[]).await;
        match status {
            200 => admitted += 1,
            429 => break (headers, body),
            other => panic!("{other} {body}"),
        }
    };
    let window = bucket_admits(RATE, RATE, started.elapsed());
    assert!(window.contains(&admitted), "admitted {admitted}, the bucket allows {window:?}");
    assert_eq!(body, serde_json::json!({"error": "Too many requests, please try again later."}));
    // A token comes back within 1/RATE s: the wait in whole seconds is 1.
    let wait = retry_after(&headers);
    assert_eq!(wait, 1);

    // Upgrades count too: one that arrives with the bucket empty is refused.
    let mut refused_upgrade = false;
    for _ in 0..=10 * RATE {
        match connect_async(server.ws_url(APP_KEY)).await {
            Err(WsError::Http(res)) => {
                assert_eq!(res.status(), 429);
                refused_upgrade = true;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("an upgrade failed without an answer: {e}"),
        }
    }
    assert!(refused_upgrade, "upgrades are not counted");

    // Probes are never limited: a load balancer must not see 429 from /health or /metrics.
    assert_eq!(http.get("/health").await.0, 200);
    assert_eq!(http.get("/metrics").await.0, 200);

    // Retry-After is honest: after that wait a request is admitted again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(http.get("/notifmoo.js").await.0, 200);
}
