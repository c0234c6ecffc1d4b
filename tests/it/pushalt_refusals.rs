//! The server's own refusals on Push-Alt's paths (SPEC §5, §10): the per-address 429, the 503
//! of a connection over capacity, the 408 deadline and a 404 under `/api/` come in Push-Alt's
//! envelope with the CORS headers its routes carry, so a browser page can read them; the same
//! refusals elsewhere keep `{"error"}`.

use hyper::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::bodies::{Answer, head_only};
use crate::support::{TestServer, spawn_with};

const ALLOWED: &str = "https://allowed.example";

fn envelope(message: &str) -> serde_json::Value {
    json!({"success": false, "message": message})
}

/// The value of `name` in a lowercased response head.
fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.head.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// A bodiless request from `origin` on a connection of its own.
async fn from(server: &TestServer, line: &str, origin: &str) -> Answer {
    let head = format!("{line} HTTP/1.1\r\nhost: x\r\norigin: {origin}\r\n\r\n");
    head_only(server, &head, b"").await.0
}

#[tokio::test]
async fn the_per_address_rate_answers_in_push_alts_envelope_with_cors() {
    let server = spawn_with(|c| {
        c.server.requests_per_ip_per_second = 1;
        c.server.cors_origins = vec![ALLOWED.into()];
    })
    .await;
    let refused = loop {
        let answer = from(&server, "GET /api/setup/complete", ALLOWED).await;
        if answer.status != 200 {
            break answer;
        }
    };
    assert_eq!((refused.status, &refused.body), (429, &envelope("Too many requests, please try again later.")));
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(ALLOWED), "{}", refused.head);
    assert!(header(&refused, "retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "{}", refused.head);
    // An origin outside the list gets the refusal without CORS; other surfaces keep theirs.
    let evil = from(&server, "GET /api/setup/complete", "https://evil.example").await;
    assert_eq!((evil.status, header(&evil, "access-control-allow-origin")), (429, None));
    let notif = from(&server, "POST /api/broadcast", ALLOWED).await;
    assert_eq!((notif.status, &notif.body), (429, &json!({"error": "Too many requests, please try again later."})));
    assert_eq!(header(&notif, "access-control-allow-origin"), None);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_over_capacity_gets_push_alts_503_with_cors() {
    let server = spawn_with(|c| {
        c.server.max_connections = 1;
        c.server.cors_origins = vec![ALLOWED.into()];
    })
    .await;
    // The one slot, held open after a request proved it was accepted.
    let mut held = TcpStream::connect(server.addr).await.unwrap();
    held.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let first = crate::bodies::read_answer(&mut held).await;
    assert_eq!(first.status, 200);
    let refused = from(&server, "GET /api/setup/complete", ALLOWED).await;
    assert_eq!(
        (refused.status, &refused.body),
        (503, &envelope("Server at connection capacity, please retry shortly."))
    );
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(ALLOWED), "{}", refused.head);
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    assert_eq!(header(&refused, "connection"), Some("close"));
    let other = from(&server, "GET /notifmoo.js", ALLOWED).await;
    assert_eq!(
        (other.status, &other.body["error"]),
        (503, &json!("Server at connection capacity, please retry shortly."))
    );
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn the_deadline_and_unknown_paths_answer_in_push_alts_envelope_with_cors() {
    let server = spawn_with(|c| {
        c.server.request_timeout_ms = 700;
        c.server.cors_origins = vec![ALLOWED.into()];
    })
    .await;
    // A body that never completes.
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nhost: x\r\norigin: {ALLOWED}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n"
    );
    let (late, _) = head_only(&server, &head, b"{").await;
    assert_eq!((late.status, &late.body), (408, &envelope("request not completed in time")));
    assert_eq!(header(&late, "access-control-allow-origin"), Some(ALLOWED), "{}", late.head);
    assert_eq!(header(&late, "connection"), Some("close"));
    // A path under /api/ that no route serves.
    let unknown = from(&server, "GET /api/no-such-route", ALLOWED).await;
    assert_eq!((unknown.status, &unknown.body), (404, &envelope("Not found")));
    assert_eq!(header(&unknown, "access-control-allow-origin"), Some(ALLOWED));
    let elsewhere = server.http().request(Method::GET, "/no-such-route", b"", &[]).await;
    assert_eq!(elsewhere, (404, json!({"error": "not found"})));
    server.stop().await;
}
